"""Running ffmpeg and ffprobe on untrusted input: whitelists, timeouts, bounded output."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

# Untrusted-media rules: local files only, demuxers of mp4/mov/m4a/webm/mkv only.
PROTOCOLS = "file"
FORMATS = "mov,matroska"
INPUT_GUARD = ("-protocol_whitelist", PROTOCOLS, "-format_whitelist", FORMATS)
_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}

Progress = Callable[[float], None]


class MediaError(Exception):
    """The tool failed on this input (it is not valid media for us)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class MediaTimeout(MediaError):
    """The tool ran past its wall-clock limit and was killed with its process group."""


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str


def _die_with_parent() -> None:
    """In the child: if the process that started us dies (a killed worker), so do we."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def local_input(path: Path) -> str:
    """An input argument that can only mean a local file (never a URL or a protocol)."""
    resolved = path.resolve(strict=True)
    if not resolved.is_file():
        raise MediaError(f"{path} is not a regular file")
    return f"file:{resolved}"


def guarded_input(src: Path, **options: Any) -> Any:
    """An ffmpeg-python input of a local file, opened only by the whitelisted demuxers."""
    return ffmpeg.input(local_input(src), protocol_whitelist=PROTOCOLS,
                        format_whitelist=FORMATS, **options)


def command(stream: Any, *extra: str) -> list[str]:
    """ffmpeg-python's arguments with our global options where ffmpeg reads them."""
    args: list[str] = stream.compile()
    return [args[0], "-nostdin", "-hide_banner", "-v", "error", *extra, *args[1:]]


def progress_parser(duration: float, on_progress: Progress | None) -> Callable[[str], None]:
    """An `on_line` for `-progress pipe:1`: reports the share of `duration` written, 0 to 1."""
    def parse(line: str) -> None:
        key, _, value = line.partition("=")
        if on_progress is not None and key == "out_time_us" and value.isdigit() and duration:
            on_progress(min(int(value) / 1e6 / duration, 1.0))

    return parse


def _child_setup(nice: int) -> Callable[[], None]:
    def setup() -> None:
        _die_with_parent()
        if nice:
            os.nice(nice)  # heavy work yields the CPU to short clips and requests

    return setup


def run(args: Sequence[str], *, timeout: float, on_line: Callable[[str], None] | None = None,
        keep_stdout: bool = True, stdout_cap: int = 4 * 1024 * 1024, nice: int = 0) -> Result:
    """Run a media tool in its own process group; kill the whole group on timeout."""
    proc = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, env=_ENV,
                            text=True, errors="replace", preexec_fn=_child_setup(nice))
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    err_tail: deque[str] = deque(maxlen=200)
    assert proc.stderr is not None and proc.stdout is not None
    drain = threading.Thread(target=lambda: err_tail.extend(proc.stderr or ()), daemon=True)
    drain.start()
    timer = threading.Timer(timeout, kill)
    timer.start()
    out: list[str] = []
    size = 0
    try:
        for line in proc.stdout:
            if on_line is not None:
                on_line(line.rstrip("\n"))
            if keep_stdout and size < stdout_cap:
                out.append(line)
                size += len(line)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill()
            proc.wait()
        drain.join(5)
    stderr = "".join(err_tail)
    if timed_out.is_set():
        raise MediaTimeout(f"{Path(args[0]).name} took longer than {timeout:g} s", stderr)
    if proc.returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {proc.returncode}"
        raise MediaError(last, stderr)
    return Result("".join(out), stderr)


@functools.cache
def tool_version(tool: str = "ffmpeg") -> str:
    """The first line of `tool -version`, for manifests."""
    result = run([tool, "-version"], timeout=10)
    return result.stdout.splitlines()[0] if result.stdout else "unknown"
