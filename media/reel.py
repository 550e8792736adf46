"""A reel from its pieces, fast by construction.

Video: a stream-copy join of the pieces. With crossfades only the transition windows are
re-encoded (smart rendering): each window runs from the last GOP boundary before the fade
in the outgoing piece to the first GOP boundary after it in the incoming one.
Audio: always mixed in one separate pass from the pieces' PCM (never stream-copied across
joins, where AAC priming would drift), music ducked under speech, brought to the target
loudness, then encoded once and muxed with the joined video.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from media import aac
from media.canvas import FPS, GOP, MEZZANINE, SAMPLE_RATE, SAMPLES_PER_FRAME, TIMESCALE, Mezzanine
from media.run import PROTOCOLS, MediaError, Progress, command, local_input, run

MUSIC_FORMATS = "mov,matroska,mp3,wav,ogg,flac"


@dataclass(frozen=True)
class Part:
    """A rendered piece and its exact length in frames."""

    path: Path
    frames: int


@dataclass(frozen=True)
class Copy:
    """Frames [start, end) of part `index`, taken by stream copy (both ends on GOP bounds)."""

    index: int
    start: int
    end: int


@dataclass(frozen=True)
class Window:
    """A re-encoded transition: part `index` from frame `start` to its end, fading over its
    last `overlap` frames into the first `end` frames of part `index + 1`."""

    index: int
    start: int
    end: int
    overlap: int

    def frames(self, parts: Sequence[Part]) -> int:
        return parts[self.index].frames - self.start + self.end - self.overlap


Segment = Copy | Window


def plan(parts: Sequence[Part], overlap: int) -> list[Segment]:
    """The segments of a reel: whole parts for hard cuts; for crossfades of `overlap` frames,
    copies between re-encoded windows. Total length is sum(frames) - (n - 1) * overlap."""
    if not parts:
        raise ValueError("a reel needs at least one piece")
    if overlap < 0 or overlap % 1:
        raise ValueError("the crossfade is a whole, non-negative number of frames")
    if overlap == 0 or len(parts) == 1:
        return [Copy(i, 0, p.frames) for i, p in enumerate(parts)]
    head = -(-overlap // GOP) * GOP  # frames of the incoming piece inside a window
    segments: list[Segment] = []
    begin = 0
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        end = part.frames if last else (part.frames - overlap) // GOP * GOP
        if end < begin or (not last and parts[i + 1].frames < head):
            raise ValueError(f"piece {i} ({part.frames} frames) is too short for a "
                             f"{overlap}-frame crossfade")
        if end > begin:
            segments.append(Copy(i, begin, end))
        if not last:
            segments.append(Window(i, end, head, overlap))
            begin = head
    return segments


def total_frames(parts: Sequence[Part], overlap: int) -> int:
    return sum(p.frames for p in parts) - overlap * (len(parts) - 1 if overlap else 0)


def _seconds(frames: int) -> str:
    return f"{frames / FPS:.6f}"


def render_window(parts: Sequence[Part], window: Window, dst: Path, *, timeout: float,
                  mezzanine: Mezzanine = MEZZANINE) -> None:
    """Encode one transition window in the mezzanine format (video only)."""
    out_part, in_part = parts[window.index], parts[window.index + 1]
    count = window.frames(parts)
    a = (ffmpeg.input(local_input(out_part.path), ss=_seconds(window.start),
                      protocol_whitelist=PROTOCOLS, format_whitelist="mov")["v:0"]
         .trim(end_frame=out_part.frames - window.start).setpts("PTS-STARTPTS"))
    b = (ffmpeg.input(local_input(in_part.path), protocol_whitelist=PROTOCOLS,
                      format_whitelist="mov")["v:0"]
         .trim(end_frame=window.end).setpts("PTS-STARTPTS"))
    offset = out_part.frames - window.start - window.overlap
    video = ffmpeg.filter([a, b], "xfade", transition="fade",
                          duration=_seconds(window.overlap), offset=_seconds(offset))
    out = ffmpeg.output(video.filter("format", "yuv420p"), str(dst), f="mov", an=None,
                        map_metadata=-1, **{"frames:v": count}, **mezzanine.video_args())
    run(command(out, "-y"), timeout=timeout, keep_stdout=False)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


def concat_list(parts: Sequence[Part], segments: Sequence[Segment],
                windows: dict[int, Path], dst: Path) -> Path:
    """An ffconcat script: stream-copy spans of pieces with window files between them."""
    lines = ["ffconcat version 1.0"]
    for seg in segments:
        if isinstance(seg, Window):
            lines.append(f"file {_quote(windows[seg.index])}")
            continue
        lines.append(f"file {_quote(parts[seg.index].path)}")
        if seg.start:
            lines.append(f"inpoint {_seconds(seg.start)}")
        if seg.end < parts[seg.index].frames:
            lines.append(f"outpoint {_seconds(seg.end)}")
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst


@dataclass(frozen=True)
class Music:
    path: Path
    gain_db: float = -12.0  # under speech, before ducking


@dataclass(frozen=True)
class AudioPlan:
    overlap: int = 0             # crossfade, frames
    music: Music | None = None
    lufs: float = -16.0
    true_peak: float = -1.5


def _speech(parts: Sequence[Part], overlap: int) -> Any:
    tracks = [ffmpeg.input(local_input(p.path), protocol_whitelist=PROTOCOLS,
                           format_whitelist="mov")["a:0"] for p in parts]
    if len(tracks) == 1:
        return tracks[0]
    if not overlap:
        return ffmpeg.filter(tracks, "concat", n=len(tracks), v=0, a=1)
    mixed = tracks[0]
    for track in tracks[1:]:
        mixed = ffmpeg.filter([mixed, track], "acrossfade", ns=overlap * SAMPLES_PER_FRAME,
                              c1="tri", c2="tri")
    return mixed


@dataclass(frozen=True)
class Level:
    lufs: float       # integrated loudness
    peak_db: float    # sample peak, dBFS

    def gain(self, target: float) -> float:
        return 0.0 if self.lufs < -70 else target - self.lufs

    def needs_limiter(self, target: float, ceiling_db: float) -> bool:
        """Whether the gained soundtrack could pass the ceiling (1 dB of margin for the
        inter-sample peaks that sample peaks miss)."""
        return self.peak_db + self.gain(target) > ceiling_db - 1.0


def mix(parts: Sequence[Part], plan_: AudioPlan, dst: Path, *, timeout: float) -> Level:
    """Pass 1: the reel's whole soundtrack to `dst` (float WAV), music ducked under speech by
    sidechain compression, measured on the way (integrated loudness and sample peak)."""
    samples = total_frames(parts, plan_.overlap) * SAMPLES_PER_FRAME
    speech = (_speech(parts, plan_.overlap)
              .filter("aformat", sample_fmts="fltp", channel_layouts="stereo"))
    if plan_.music is not None:
        music = (ffmpeg.input(local_input(plan_.music.path), stream_loop=-1,
                              protocol_whitelist=PROTOCOLS,
                              format_whitelist=MUSIC_FORMATS)["a:0"]
                 .filter("aresample", SAMPLE_RATE)
                 .filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
                 .filter("atrim", end_sample=samples).filter("asetpts", "PTS-STARTPTS")
                 .filter("volume", f"{plan_.music.gain_db}dB")
                 .filter("afade", t="out", start_sample=max(samples - SAMPLE_RATE, 0),
                         nb_samples=min(SAMPLE_RATE, samples)))
        branches = speech.asplit()
        key, voice = branches[0], branches[1]
        ducked = ffmpeg.filter([music, key], "sidechaincompress", threshold=0.02, ratio=8,
                               attack=20, release=400)
        speech = ffmpeg.filter([voice, ducked], "amix", inputs=2, duration="first",
                               normalize=0)
    track = (speech.filter("atrim", end_sample=samples)
             .filter("apad", whole_len=samples)
             .filter("ebur128", framelog="verbose", peak="sample"))
    out = ffmpeg.output(track, str(dst), f="wav", acodec="pcm_f32le", ar=SAMPLE_RATE)
    result = run(command(out, "-y", "-v", "info"), timeout=timeout, keep_stdout=False)
    lufs = re.findall(r"I:\s+(-?[\d.]+|-inf) LUFS", result.stderr)
    peak = re.findall(r"Peak:\s+(-?[\d.]+|-inf) dBFS", result.stderr)
    if not lufs or not peak:
        raise MediaError("the reel's loudness was not measured", result.stderr)
    return Level(float(lufs[-1]), float(peak[-1]))


def assemble(parts: Sequence[Part], segments: Sequence[Segment], windows: dict[int, Path],
             soundtrack: Path, level: Level, plan_: AudioPlan, dst: Path, *,
             timeout: float, jobs: int = 2, on_progress: Progress | None = None) -> None:
    """Pass 2: the soundtrack brought to the target loudness by a gain (and held under the
    ceiling by a limiter when the gain could pass it), encoded once to AAC on `jobs` cores;
    then the video joined by stream copy and both muxed."""
    filters: list[tuple[str, dict[str, Any]]] = [
        ("volume", {"volume": f"{level.gain(plan_.lufs):.2f}dB"})]
    if level.needs_limiter(plan_.lufs, plan_.true_peak):
        filters.append(("alimiter", {"limit": f"{10 ** (plan_.true_peak / 20):.4f}",
                                     "level": 0, "latency": 1, "attack": 5, "release": 50}))
    encoded = dst.with_suffix(".aac")
    aac.encode(soundtrack, encoded, samples=total_frames(parts, plan_.overlap)
               * SAMPLES_PER_FRAME, filters=filters, timeout=timeout, jobs=jobs,
               options={"acodec": "aac", "ar": SAMPLE_RATE, "ac": 2, "b:a": "160k",
                        "aac_coder": "fast"})
    listing = concat_list(parts, segments, windows, dst.with_suffix(".ffconcat"))
    video = ffmpeg.input(local_input(listing), f="concat", safe=0,
                         protocol_whitelist=PROTOCOLS, format_whitelist="concat,mov")["v:0"]
    # the stream starts with the encoder's priming packet: declare it (negative start ->
    # an edit list), so that audio starts with the video
    audio = ffmpeg.input(local_input(encoded), f="aac", protocol_whitelist=PROTOCOLS,
                         format_whitelist="aac",
                         itsoffset=f"{-aac.PRIMING / SAMPLE_RATE:.9f}")["a:0"]
    out = ffmpeg.output(video, audio, str(dst), f="mp4", vcodec="copy", acodec="copy",
                        video_track_timescale=TIMESCALE, movflags="+faststart",
                        map_metadata=-1)
    run(command(out, "-y"), timeout=timeout, keep_stdout=False)
    if on_progress is not None:
        on_progress(1.0)


def build(parts: Sequence[Part], audio: AudioPlan, dst: Path, scratch: Path, *,
          timeout: float, mezzanine: Mezzanine = MEZZANINE,
          on_progress: Progress | None = None) -> int:
    """The reel from its rendered pieces: transition windows and the soundtrack side by side
    (two workers: a window is too short to keep x264 busy on its own), then the join.
    Returns the reel's length in frames."""
    segments = plan(parts, audio.overlap)
    windows = {seg.index: scratch / f"window-{seg.index}.mov"
               for seg in segments if isinstance(seg, Window)}
    soundtrack = scratch / "soundtrack.wav"
    steps = len(windows) + 2
    done = 0
    with ThreadPoolExecutor(2) as pool:
        level = pool.submit(mix, parts, audio, soundtrack, timeout=timeout)
        pending: list[Future[Any]] = [
            pool.submit(render_window, parts, seg, windows[seg.index], timeout=timeout,
                        mezzanine=mezzanine)
            for seg in segments if isinstance(seg, Window)]
        for future in as_completed([level, *pending]):
            future.result()
            done += 1
            if on_progress is not None:
                on_progress(done / steps)
    assemble(parts, segments, windows, soundtrack, level.result(), audio, dst,
             timeout=timeout, on_progress=on_progress)
    return total_frames(parts, audio.overlap)


def poster(src: Path, dst: Path, at_frame: int, *, timeout: float) -> None:
    """One frame of the finished reel as a JPEG (its first frame is often a title card)."""
    out = ffmpeg.output(
        ffmpeg.input(local_input(src), ss=_seconds(at_frame), protocol_whitelist=PROTOCOLS,
                     format_whitelist="mov")["v:0"],
        str(dst), vframes=1, q=3, f="image2")
    run(command(out, "-y"), timeout=timeout, keep_stdout=False)
