"""Untrusted media: nothing leaves the file, nothing hangs, odd files are refused clearly."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from media.probe import probe
from media.run import MediaError, MediaTimeout, run
from service.domain.story_rules import StoryLimits, refuse_media
from tests import media_files

LIMITS = StoryLimits(max_bytes=500_000_000, max_seconds=180, containers=("mp4", "mov", "webm"),
                     video_codecs=("h264", "hevc", "vp8", "vp9", "av1"),
                     audio_codecs=("aac", "opus", "mp3"), max_pixels=4096 * 4096)


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1 that records every request it gets."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"\x00" * 1024)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()


@pytest.mark.parametrize("kind", ["hls", "ffconcat"])
def test_playlists_reach_nothing(tmp_path: Path, listener: tuple[int, list[str]],
                                 kind: str) -> None:
    """A playlist named .mp4 that points at a local file and at http://127.0.0.1 is refused
    at once: no request is made and the local file is never opened (it is a FIFO, so opening
    it would block until the timeout)."""
    port, seen = listener
    secret = tmp_path / "secret.ts"
    os.mkfifo(secret)
    fake = tmp_path / "clip.mp4"
    if kind == "hls":
        fake.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{secret}\n"
                        f"#EXTINF:2,\nhttp://127.0.0.1:{port}/leak.ts\n#EXT-X-ENDLIST\n")
    else:
        fake.write_text(f"ffconcat version 1.0\nfile '{secret}'\n"
                        f"file 'http://127.0.0.1:{port}/leak.ts'\n")
    started = time.monotonic()
    with pytest.raises(MediaError) as info:
        probe(fake, timeout=10)
    assert not isinstance(info.value, MediaTimeout)
    assert time.monotonic() - started < 5
    time.sleep(0.3)
    assert seen == []


@pytest.mark.parametrize("content", [b"just some text, not a video\n" * 50,
                                     b"\x89PNG\r\n\x1a\n" + b"\x00" * 500])
def test_non_video_files_are_refused(tmp_path: Path, content: bytes) -> None:
    fake = tmp_path / "video.mp4"
    fake.write_bytes(content)
    with pytest.raises(MediaError):
        probe(fake, timeout=10)


def test_a_real_image_named_mp4(tmp_path: Path) -> None:
    image = tmp_path / "photo.mp4"
    media_files.ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1", "-f",
                       "image2", "-c:v", "png", str(image))
    with pytest.raises(MediaError):
        probe(image, timeout=10)


def test_truncated_file(tmp_path: Path) -> None:
    whole = media_files.story_mp4(tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(MediaError):
        probe(cut, timeout=10)


def test_absurd_frame_size_is_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.mp4"
    media_files.ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=8192x4320:r=1:d=1", "-c:v",
                       "libx264", "-preset", "ultrafast", str(huge))
    refusal = refuse_media(probe(huge, timeout=30), LIMITS)
    assert refusal is not None and refusal.code == "frame_too_large"
    assert "8192x4320" in str(refusal)


def test_runaway_tools_are_killed_with_their_children(tmp_path: Path) -> None:
    """A wall-clock timeout kills the whole process group, children included."""
    marker = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(MediaTimeout):
        run(["sh", "-c", f"sleep 60 & echo $! > {marker}; wait"], timeout=0.5)
    assert time.monotonic() - started < 5
    child = int(marker.read_text())
    time.sleep(0.2)
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(child)], capture_output=True,
                           text=True).stdout.strip()
    assert state[:1] in ("", "Z"), f"child {child} still running: {state}"


def test_only_local_files_are_inputs(tmp_path: Path) -> None:
    from media.run import local_input

    with pytest.raises(FileNotFoundError):
        local_input(tmp_path / "missing.mp4")
    with pytest.raises(MediaError):
        local_input(tmp_path)
    assert local_input(media_files.story_mp4(tmp_path / "ok.mp4")).startswith("file:/")
