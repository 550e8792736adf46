"""A moment of a recording cut out as a clip's source: frame-exact from `start`, `seconds`
long, at near-transparent quality (the clip is then normalised like any story).

The input is seeked before decoding (`-ss` on the input) and re-encoded, so the first frame
is the one at `start` however far it is from a keyframe; the length is set in frames.
"""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from media.normalise import RenditionSpec
from media.run import command, guarded_input, run


def cut(src: Path, dst: Path, *, start: float, seconds: float, timeout: float,
        fps: int = 30) -> None:
    """Write `seconds` of `src` from `start` to `dst` (MP4, H.264 CRF 14, AAC 256k).
    `src` is a web rendition: constant `fps`, one video and one audio stream."""
    if start < 0 or seconds <= 0:
        raise ValueError("a cut starts at 0 s or later and lasts more than 0 s")
    frames = max(round(seconds * fps), 1)
    source = guarded_input(src, ss=f"{start:.6f}")
    out = ffmpeg.output(
        source["v:0"], source["a:0"], str(dst), f="mp4", t=f"{frames / fps:.6f}",
        vcodec="libx264", preset="veryfast", crf=14, **{
            "frames:v": frames, "pix_fmt": "yuv420p", "r": fps,
            "acodec": "aac", "b:a": "256k", "movflags": "+faststart",
            "map_metadata": -1, "map_chapters": -1,
            "video_track_timescale": RenditionSpec(fps=fps).timescale})
    run(command(out, "-y"), timeout=timeout, keep_stdout=False)
