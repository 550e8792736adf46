"""A brand's logo from an untrusted picture: PNG, JPEG or WebP only (sniffed from its first
bytes, never its name or declared type; no SVG), its frame size checked by ffprobe before any
decoding, then decoded once by the one demuxer its type names and written again as a PNG of
at most `max_side` pixels a side: what is served is always our own encode."""

from __future__ import annotations

import json
from pathlib import Path

import ffmpeg

from media.run import PROTOCOLS, MediaError, command, local_input, run

# first bytes -> (ffmpeg demuxer, what the picture is)
DEMUXERS = {b"\x89PNG\r\n\x1a\n": "png_pipe", b"\xff\xd8\xff": "jpeg_pipe"}
MAX_PIXELS = 25_000_000  # a 5000x5000 picture at most: no decompression bombs


def picture_type(head: bytes) -> str | None:
    """The demuxer for a PNG, JPEG or WebP file's first 12 bytes, else None."""
    for magic, demuxer in DEMUXERS.items():
        if head.startswith(magic):
            return demuxer
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp_pipe"
    return None


def picture_size(src: Path, demuxer: str, *, timeout: float) -> tuple[int, int]:
    """Width and height as the header declares them; the decoder is never let near a frame
    above MAX_PIXELS (`-max_pixels`), so a decompression bomb fails here, unallocated."""
    result = run(["ffprobe", "-v", "error", "-protocol_whitelist", PROTOCOLS,
                  "-format_whitelist", demuxer, "-f", demuxer, "-max_pixels", str(MAX_PIXELS),
                  "-select_streams", "v:0",
                  "-show_entries", "stream=width,height", "-of", "json", local_input(src)],
                 timeout=timeout)
    try:
        stream = json.loads(result.stdout)["streams"][0]
        return int(stream["width"]), int(stream["height"])
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise MediaError("no picture in this file", result.stderr) from exc


def make_logo(src: Path, dst: Path, *, max_side: int = 512, timeout: float = 20) -> tuple[int, int]:
    """Write `src` (PNG, JPEG or WebP) to `dst` as a PNG no larger than `max_side` a side,
    transparency kept. Returns the new width and height; MediaError when it isn't one."""
    with src.open("rb") as f:
        demuxer = picture_type(f.read(12))
    if demuxer is None:
        raise MediaError("not a PNG, JPEG or WebP picture")
    width, height = picture_size(src, demuxer, timeout=timeout)
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise MediaError(f"a {width}x{height} picture is larger than we take")
    scale = min(1.0, max_side / max(width, height))
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    picture = ffmpeg.input(local_input(src), f=demuxer, protocol_whitelist=PROTOCOLS,
                           format_whitelist=demuxer, max_pixels=MAX_PIXELS)["v:0"]
    picture = picture.filter("scale", out_w, out_h, flags="lanczos").filter("format", "rgba")
    out = ffmpeg.output(picture, str(dst), vframes=1, f="image2", vcodec="png",
                        map_metadata=-1)
    run(command(out, "-y"), timeout=timeout, keep_stdout=False)
    return out_w, out_h
