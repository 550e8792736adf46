"""Mail in tests: a real SMTP server process (aiosmtpd's own command, delivering into a
maildir), what arrived, and `kumpul worker` processes that deliver the outbox."""

from __future__ import annotations

import mailbox
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path

from service.settings import Settings
from tests.conftest import free_port, settings_env, wait_for_port


@contextmanager
def smtp_server(folder: Path, port: int | None = None) -> Iterator[int]:
    """aiosmtpd on 127.0.0.1 delivering into the maildir `folder`; yields its port."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                             f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox",
                             str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def received(folder: Path, count: int, timeout: float = 20.0) -> list[Message]:
    """The mails in the maildir once there are at least `count`, oldest first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.exists() and len(box := mailbox.Maildir(folder, create=False)) >= count:
            return [box[key] for key in sorted(box.keys(), key=lambda k: box[k]["Date"] or k)]
        time.sleep(0.1)
    raise AssertionError(f"{count} mails did not arrive")


def part(mail: Message, subtype: str) -> str:
    """The text/`subtype` part of a mail, decoded."""
    for piece in mail.walk():
        if piece.get_content_type() == f"text/{subtype}":
            payload = piece.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(piece.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{subtype} part")


@contextmanager
def worker(settings: Settings, log: Path, *queues: str) -> Iterator[subprocess.Popen[bytes]]:
    """`kumpul worker` running until the block ends."""
    with log.open("a") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "worker",
                                 *(queues or ("default",))], env=settings_env(settings),
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(20)


def burst(settings: Settings, *queues: str) -> None:
    """`kumpul worker --burst`: run what is queued, then stop."""
    done = subprocess.run([sys.executable, "-m", "service.cli", "worker",
                           *(queues or ("default",)), "--burst"], env=settings_env(settings),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
