"""The web rendition every clip is normalised to once, built with ffmpeg-python.

H.264 High, yuv420p, constant 30 fps, closed GOP of 0.5 s, no B-frames, one timescale;
AAC 48 kHz stereo at -16 LUFS integrated / -1.5 dBTP by two-pass loudnorm (a silent track
when the source has none); rotation applied, HDR tone-mapped to SDR, faststart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from media.probe import MediaInfo
from media.run import MediaError, Progress, command, guarded_input, progress_parser, run


@dataclass(frozen=True)
class RenditionSpec:
    long_side: int = 1280
    fps: int = 30
    gop_seconds: float = 0.5
    crf: int = 21
    preset: str = "veryfast"
    audio_rate: int = 48000
    audio_bitrate: str = "128k"
    lufs: float = -16.0
    true_peak: float = -1.5
    lra: float = 11.0
    # bilinear: 15% faster than bicubic for a 1080x1920 -> 720x1280 downscale (measured),
    # with no visible loss at the ~1.5x ratios phones give
    scaler: str = "bilinear"
    # heavy plans (media/budget.py): skip non-reference frames and the loop filter at the
    # decoder, drop frames to the rendition's rate before scaling, run at low CPU priority
    drop_frames: bool = False
    fast_decode: bool = False
    nice: int = 0

    def __post_init__(self) -> None:
        if self.long_side % 2 or not 64 <= self.long_side <= 4096:
            raise ValueError(f"long_side must be even and within 64-4096, not {self.long_side}")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be within 1-120, not {self.fps}")
        gop = self.gop_seconds * self.fps
        if gop != int(gop) or gop < 1:
            raise ValueError(f"a GOP of {self.gop_seconds} s is not a whole number of frames")

    @property
    def gop_frames(self) -> int:
        return int(self.gop_seconds * self.fps)

    @property
    def timescale(self) -> int:
        return self.fps * 512  # one timescale for every rendition: exact frame ticks


@dataclass(frozen=True)
class Loudness:
    input_i: float
    input_tp: float
    input_lra: float
    input_thresh: float
    target_offset: float


def measure_loudness(src: Path, spec: RenditionSpec, *, timeout: float, start: float = 0,
                     seconds: float | None = None) -> Loudness | None:
    """Loudnorm's first pass over the first audio stream (the `seconds` from `start` when
    given: the part that is kept); None for digital silence."""
    stream = guarded_input(src, **_seek(start))["a:0"].filter(
        "loudnorm", I=spec.lufs, TP=spec.true_peak, LRA=spec.lra, print_format="json")
    length = {"t": f"{seconds:.3f}"} if seconds else {}
    result = run(command(ffmpeg.output(stream, "-", f="null", **length), "-v", "info"),
                 timeout=timeout, keep_stdout=False)
    found = re.search(r"\{[^{}]*\"input_i\"[^{}]*\}", result.stderr, re.S)
    if not found:
        raise MediaError("loudness was not measured", result.stderr)
    data = json.loads(found.group(0))
    values = {k: float(data[k]) for k in ("input_i", "input_tp", "input_lra", "input_thresh",
                                           "target_offset")}
    if values["input_i"] == float("-inf") or values["input_i"] < -70:
        return None  # silence: nothing to normalise
    return Loudness(**values)


def _tonemap(video: Any) -> Any:
    """HDR (PQ or HLG) to SDR BT.709."""
    return (video.filter("zscale", t="linear", npl=100).filter("format", "gbrpf32le")
            .filter("zscale", p="bt709").filter("tonemap", tonemap="hable", desat=0)
            .filter("zscale", t="bt709", m="bt709", r="tv"))


def _scale(video: Any, spec: RenditionSpec) -> Any:
    return video.filter("scale", w=f"min({spec.long_side},iw)", h=f"min({spec.long_side},ih)",
                        force_original_aspect_ratio="decrease", force_divisible_by=2,
                        flags=spec.scaler).filter("setsar", "1")


def _video(stream: Any, info: MediaInfo, spec: RenditionSpec) -> Any:
    hdr = info.video is not None and info.video.hdr
    if spec.fast_decode:  # heavy: fewer frames, then fewer pixels, before anything else
        video = _scale(stream.filter("fps", spec.fps), spec)
        return (_tonemap(video) if hdr else video).filter("format", "yuv420p")
    video = _tonemap(stream) if hdr else stream
    return _scale(video, spec).filter("fps", spec.fps).filter("format", "yuv420p")


def decoder_options(spec: RenditionSpec) -> dict[str, str]:
    """Input options that make the decoder itself do less on heavy plans."""
    options = {}
    if spec.fast_decode:
        options.update({"skip_loop_filter": "all", "flags2": "fast"})
    if spec.drop_frames:
        options["skip_frame"] = "noref"
    return options


@dataclass(frozen=True)
class Stills:
    """Images made in the same pass as the rendition (no second decode): a poster, the most
    representative of 30 frames from a quarter of the way in (not a black first frame), and
    a filmstrip of `count` evenly spaced thumbnails, left to right, for trimming."""

    poster: Path
    filmstrip: Path
    count: int = 10
    height: int = 90

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 100:
            raise ValueError("a filmstrip has 1 to 100 thumbnails")


def _stills(poster_frames: Any, strip_frames: Any, stills: Stills,
            duration: float) -> list[Any]:
    start = min(max(duration * 0.25, 0.0), max(duration - 1.0, 0.0))
    poster = (poster_frames.trim(start=f"{start:.3f}", end=f"{start + 1.0:.3f}")
              .setpts("PTS-STARTPTS")
              .filter("thumbnail", 30))
    strip = (strip_frames.filter("fps", f"{stills.count}/{max(duration, 0.1):.3f}")
             .filter("scale", w=-2, h=stills.height).filter("tile", f"{stills.count}x1"))
    return [ffmpeg.output(poster, str(stills.poster), vframes=1, q=3, f="image2"),
            ffmpeg.output(strip, str(stills.filmstrip), vframes=1, q=4, f="image2")]


def _seek(start: float) -> dict[str, str]:
    """Input options that start decoding at `start` seconds: ffmpeg seeks to the keyframe
    before it and drops what precedes it, so the first frame out is the one at `start`."""
    return {"ss": f"{start:.3f}"} if start > 0 else {}


def normalise(src: Path, dst: Path, info: MediaInfo, spec: RenditionSpec, *, timeout: float,
              max_seconds: float | None = None, stills: Stills | None = None,
              on_progress: Progress | None = None, start: float = 0) -> None:
    """Write the web rendition of `src` to `dst` (rotation is applied by ffmpeg's autorotate),
    and its stills in the same pass when asked. With `start`, the rendition begins that far
    into the source and `info.duration` is the length kept from there."""
    if info.video is None:
        raise MediaError("no video stream to normalise")
    if start < 0:
        raise ValueError("a rendition starts at 0 s or later")
    source = guarded_input(src, **decoder_options(spec), **_seek(start))
    video = _video(source["v:0"], info, spec)
    extra: list[Any] = []
    duration = min(info.duration, max_seconds) if max_seconds else info.duration
    if stills is not None:
        branches = video.split()
        video = branches[0]
        extra = _stills(branches[1], branches[2], stills, duration)
    loudness = measure_loudness(src, spec, timeout=timeout, start=start,
                                seconds=duration if start else None) if info.audio else None
    if spec.fast_decode and info.audio is not None:
        audio_in = guarded_input(src, **_seek(start))["a:0"]  # decoded apart from frame skipping
    else:
        audio_in = source["a:0"] if info.audio is not None else None
    if info.audio is None:
        audio = ffmpeg.input(f"anullsrc=r={spec.audio_rate}:cl=stereo", f="lavfi")["a"]
    elif loudness is None:
        audio = audio_in
    else:
        audio = audio_in.filter(
            "loudnorm", I=spec.lufs, TP=spec.true_peak, LRA=spec.lra,
            measured_I=loudness.input_i, measured_TP=loudness.input_tp,
            measured_LRA=loudness.input_lra, measured_thresh=loudness.input_thresh,
            offset=loudness.target_offset, linear="true")
    audio = audio.filter("aresample", spec.audio_rate).filter(
        "aformat", sample_fmts="fltp", channel_layouts="stereo")
    out = ffmpeg.output(
        video, audio, str(dst), f="mp4", t=f"{duration:.3f}",
        vcodec="libx264", preset=spec.preset, crf=spec.crf, **{
            "profile:v": "high", "pix_fmt": "yuv420p", "g": spec.gop_frames,
            "keyint_min": spec.gop_frames, "sc_threshold": 0, "bf": 0,
            "x264-params": "open-gop=0:scenecut=0", "flags": "+cgop",
            "video_track_timescale": spec.timescale,
            "acodec": "aac", "ar": spec.audio_rate, "ac": 2, "b:a": spec.audio_bitrate,
            "movflags": "+faststart", "map_metadata": -1, "map_chapters": -1,
        })
    if extra:
        out = ffmpeg.merge_outputs(out, *extra)
    run(command(out, "-y", "-progress", "pipe:1", "-nostats"), timeout=timeout,
        on_line=progress_parser(duration, on_progress), keep_stdout=False, nice=spec.nice)
