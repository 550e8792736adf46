"""Pieces: one clip (or a title card) rendered once into a reel's canvas and mezzanine format.

A piece is a MOV with H.264 video (closed GOP of 0.5 s, so it can be cut by stream copy at
any GOP boundary) and PCM audio (exact sample counts, no codec priming), exactly `frames`
frames and `frames * 1600` samples long.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from media.canvas import FPS, MEZZANINE, SAMPLE_RATE, Canvas, Mezzanine
from media.lettering import FONT_BOLD, Style, layout, write
from media.run import MediaError, Progress, command, guarded_input, progress_parser, run
from media.text import Caption, clean, lower_third, overlay

MIN_FRAMES = 2 * FPS  # shorter pieces leave no room for transitions


@dataclass(frozen=True)
class PieceSpec:
    """What a piece is made of; two equal specs make the same piece (the cache relies on it)."""

    canvas: Canvas
    start: int         # first frame of the source, counted at 30 fps
    frames: int        # length
    caption: Caption | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or self.frames < MIN_FRAMES:
            raise ValueError(f"a piece starts at frame 0 or later and lasts at least "
                             f"{MIN_FRAMES} frames (got start {self.start}, {self.frames})")


def _fits(width: int, height: int, canvas: Canvas) -> bool:
    return abs(width / height - canvas.aspect) < 0.02


def frame(stream: Any, size: tuple[int, int], canvas: Canvas) -> Any:
    """Fill the canvas: a clip of the canvas's shape is scaled to it; any other is shown
    whole over a blurred, enlarged copy of itself (no black bars). The blur runs at an
    eighth of the size, which looks the same and costs a fraction."""
    w, h = canvas.width, canvas.height
    if _fits(*size, canvas):
        return stream.filter("scale", w, h, flags="bicubic").filter("setsar", "1")
    branches = stream.split()
    front, back = branches[0], branches[1]
    small = (w // 8 // 2 * 2, h // 8 // 2 * 2)
    back = (back.filter("scale", small[0], small[1], force_original_aspect_ratio="increase",
                        flags="fast_bilinear")
            .filter("crop", small[0], small[1])
            .filter("boxblur", luma_radius=6, luma_power=2)
            .filter("scale", w, h, flags="bilinear"))
    front = front.filter("scale", w, h, force_original_aspect_ratio="decrease",
                         force_divisible_by=2, flags="bicubic")
    return (ffmpeg.overlay(back, front, x="(W-w)/2", y="(H-h)/2")
            .filter("setsar", "1"))


def _encode(video: Any, audio: Any, dst: Path, frames: int, mezzanine: Mezzanine) -> Any:
    return ffmpeg.output(video, audio, str(dst), f="mov", acodec="pcm_s16le", ar=SAMPLE_RATE,
                         ac=2, map_metadata=-1, **{"frames:v": frames},
                         **mezzanine.video_args())


def _text_folder(dst: Path) -> Path:
    """Where a piece's text files go: its own folder, so pieces can render side by side."""
    folder = dst.parent / f"{dst.name}.text"
    folder.mkdir(exist_ok=True)
    return folder


def _run(out: Any, seconds: float, timeout: float, on_progress: Progress | None) -> None:
    run(command(out, "-y", "-progress", "pipe:1", "-nostats"), timeout=timeout,
        on_line=progress_parser(seconds, on_progress), keep_stdout=False)


def render_piece(src: Path, dst: Path, spec: PieceSpec, size: tuple[int, int], *,
                 has_audio: bool, timeout: float, mezzanine: Mezzanine = MEZZANINE,
                 on_progress: Progress | None = None) -> None:
    """Render frames [start, start + frames) of `src` (display size `size`) into the canvas,
    with the caption as a lower third. Audio is cut to the same span, sample-exact, and
    padded with silence if the source runs short."""
    seconds = spec.frames / FPS
    source = guarded_input(src)
    video = (source["v:0"].filter("fps", FPS)
             .trim(start_frame=spec.start, end_frame=spec.start + spec.frames)
             .setpts("PTS-STARTPTS")
             .filter("tpad", stop_mode="clone", stop=spec.frames))  # never short
    video = frame(video, size, spec.canvas)
    if spec.caption:
        video = lower_third(video, spec.caption, _text_folder(dst), spec.canvas.width,
                            spec.canvas.height)
    video = video.filter("format", "yuv420p")
    start = spec.start / FPS
    if has_audio:
        audio = (source["a:0"].filter("aresample", SAMPLE_RATE)
                 .filter("atrim", start=f"{start:.6f}").filter("asetpts", "PTS-STARTPTS"))
    else:
        audio = ffmpeg.input(f"anullsrc=r={SAMPLE_RATE}:cl=stereo", f="lavfi")["a"]
    audio = (audio.filter("aformat", sample_fmts="s16", channel_layouts="stereo")
             .filter("apad", whole_len=spec.frames * SAMPLE_RATE // FPS)
             .filter("atrim", end_sample=spec.frames * SAMPLE_RATE // FPS))
    _run(_encode(video, audio, dst, spec.frames, mezzanine), seconds, timeout, on_progress)


@dataclass(frozen=True)
class CardSpec:
    """A title card: text centred on a plain colour, with silence."""

    canvas: Canvas
    text: str
    color: str = "#1d3557"
    frames: int = 2 * FPS

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", clean(self.text, 80))
        if not self.text:
            raise ValueError("a title card needs some text")
        if not (len(self.color) == 7 and self.color[0] == "#"
                and all(c in "0123456789abcdefABCDEF" for c in self.color[1:])):
            raise ValueError(f"a colour is #rrggbb, not {self.color!r}")
        if self.frames < MIN_FRAMES:
            raise ValueError(f"a title card lasts at least {MIN_FRAMES} frames")


def render_card(dst: Path, spec: CardSpec, *, timeout: float,
                mezzanine: Mezzanine = MEZZANINE) -> None:
    w, h = spec.canvas.width, spec.canvas.height
    seconds = spec.frames / FPS
    style = Style(FONT_BOLD, max(min(w, h) // 12, 16))
    title = _text_folder(dst) / "title.png"
    write(title, layout(spec.text, int(w * 0.8), style, max_lines=6), style, centred=True)
    # the colour is checked above (#rrggbb), so it is safe in the source description
    video = ffmpeg.input(f"color=c=0x{spec.color[1:]}:s={w}x{h}:r={FPS}:d={seconds:.6f}",
                         f="lavfi")["v"]
    video = overlay(video, title, x="(W-w)/2", y="(H-h)/2")
    video = video.filter("format", "yuv420p")
    audio = ffmpeg.input(f"anullsrc=r={SAMPLE_RATE}:cl=stereo", f="lavfi")["a"].filter(
        "atrim", end_sample=spec.frames * SAMPLE_RATE // FPS)
    _run(_encode(video, audio, dst, spec.frames, mezzanine), seconds, timeout, None)
    if not dst.exists():
        raise MediaError("the title card was not written")
