"""Test media, generated at test time with ffmpeg's lavfi sources (nothing binary is committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True, timeout=120)


def story_mp4(path: Path, seconds: float = 2, size: str = "320x240", audio: bool = True) -> Path:
    """H.264 + AAC, like a phone's MP4."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}"]
    ffmpeg(*inputs, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           *(["-c:a", "aac"] if audio else []), "-shortest", str(path))
    return path


def webm_without_duration(path: Path, seconds: float = 2) -> Path:
    """VP8 WebM written to a pipe, so its header carries no duration (like MediaRecorder)."""
    with path.open("wb") as fh:
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                        f"testsrc2=s=320x240:r=30:d={seconds}", "-f", "lavfi", "-i",
                        f"sine=d={seconds}", "-c:v", "libvpx", "-deadline", "realtime",
                        "-c:a", "libopus", "-shortest", "-f", "webm", "pipe:1"],
                       stdout=fh, check=True, timeout=120)
    return path


def audio_only_mp4(path: Path, seconds: float = 2) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=d={seconds}", "-c:a", "aac", "-f", "mp4", str(path))
    return path


def big_mp4(path: Path, megabytes: int) -> Path:
    """A valid MP4 head followed by filler, for upload sizes (not for probing)."""
    small = story_mp4(path.with_suffix(".head.mp4"), 1)
    with path.open("wb") as out:
        out.write(small.read_bytes())
        block = bytes(range(256)) * 4096
        while out.tell() < megabytes * 1024 * 1024:
            out.write(block)
    return path
