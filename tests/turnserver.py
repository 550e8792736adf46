"""Debian's coturn as the tests' TURN server, configured as README tells operators: the TURN
REST API (`use-auth-secret` with `static-auth-secret`), UDP and TCP on one port, no TLS."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

REALM = "kumpul.test"


class Coturn:
    def __init__(self, folder: Path, secret: str, address: str = "127.0.0.1",
                 netns: str | None = None) -> None:
        if shutil.which("turnserver") is None:
            pytest.fail("turnserver is missing: scripts/bootstrap --dev installs Debian's coturn")
        self.folder, self.secret, self.address, self.netns = folder, secret, address, netns
        self.port = free_port()
        self.log = folder / "turnserver.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def urls(self) -> tuple[str, str]:
        where = f"{self.address}:{self.port}"
        return f"turn:{where}?transport=udp", f"turn:{where}?transport=tcp"

    def start(self) -> Coturn:
        relay_low = 50000 + (self.port % 1000) * 10
        command = [
            "turnserver", "-n", f"--listening-ip={self.address}", f"--relay-ip={self.address}",
            f"--listening-port={self.port}", f"--min-port={relay_low}",
            f"--max-port={relay_low + 9}", "--use-auth-secret",
            f"--static-auth-secret={self.secret}", f"--realm={REALM}", "--fingerprint",
            "--no-tls", "--no-dtls", "--no-cli", "--no-multicast-peers",
            f"--pidfile={self.folder / 'turnserver.pid'}",
            f"--userdb={self.folder / 'turndb'}", f"--log-file={self.log}", "--simple-log",
            "--no-stdout-log", "--verbose"]
        if self.netns is not None:
            command = ["ip", "netns", "exec", self.netns, *command]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"turnserver exited: {self.text()[-2000:]}")
            if "Total General servers" in self.text() and self._tcp_open():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"turnserver did not start: {self.text()[-2000:]}")

    def _tcp_open(self) -> bool:
        if self.netns is not None:
            return True
        with socket.socket() as probe:
            probe.settimeout(0.2)
            return probe.connect_ex((self.address, self.port)) == 0

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def allocations(self) -> int:
        """Successful TURN allocations so far."""
        return self.text().count("ALLOCATE processed, success")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
