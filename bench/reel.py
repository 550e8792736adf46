"""Reel benchmark: Kumpul's reel build (cached pieces, stream-copy join, re-encoded transition
windows, one audio pass) against a full re-encode of the same reel, for hard cuts and for
crossfades.

Run from the repository root: `.venv/bin/python bench/reel.py [--reps 3] [--clips 10]`.
Ten 15 s 720x1280 clips are generated and normalised like ingest does. Every clip is trimmed
(half a second off each end) and captioned. The baseline renders the same reel (same
framing, captions, crossfades, audio mix, loudness, encoder settings) in one ffmpeg run
from the clips' renditions, as a renderer without a piece cache would; its loudness pass is
included. Kumpul's time counts the reel build with its pieces cached; rendering the pieces
the first time is reported too. Frame exactness: the reel's frame count equals the sum of
its pieces minus the overlaps; drift is |audio length - video length| of the reel.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ffmpeg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media import reel  # noqa: E402
from media.canvas import FPS, MEZZANINE, SAMPLE_RATE, SAMPLES_PER_FRAME, canvas  # noqa: E402
from media.normalise import RenditionSpec, normalise  # noqa: E402
from media.piece import PieceSpec, frame, render_piece  # noqa: E402
from media.probe import probe  # noqa: E402
from media.text import Caption, lower_third  # noqa: E402

TIMEOUT = 900.0
OVERLAP = 15  # frames: a 0.5 s crossfade
CANVAS = canvas("9:16")


def make_sources(folder: Path, count: int, seconds: int) -> list[Path]:
    out = []
    for i in range(count):
        raw = folder / f"raw-{i}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i",
                        f"testsrc2=s=720x1280:r=30:d={seconds}", "-f", "lavfi", "-i",
                        f"anoisesrc=c=pink:r=48000:d={seconds}:seed={i},volume=-18dB",
                        "-f", "lavfi", "-i", f"sine=f={220 + 40 * i}:d={seconds}",
                        "-filter_complex", "[1][2]amix=inputs=2", "-c:v", "libx264",
                        "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-shortest",
                        str(raw)], check=True)
        web = folder / f"web-{i}.mp4"
        normalise(raw, web, probe(raw, timeout=60), RenditionSpec(), timeout=TIMEOUT)
        out.append(web)
    return out


def specs(count: int, seconds: int) -> list[PieceSpec]:
    return [PieceSpec(CANVAS, start=15, frames=seconds * FPS - 30,
                      caption=Caption(f"Member {i}: \"{i * 10}%\"", "It's {really} good"))
            for i in range(count)]


def render_pieces(sources: list[Path], pieces: list[PieceSpec], folder: Path) -> list[reel.Part]:
    parts = []
    for i, (src, spec) in enumerate(zip(sources, pieces, strict=True)):
        dst = folder / f"piece-{i}.mov"
        render_piece(src, dst, spec, (720, 1280), has_audio=True, timeout=TIMEOUT)
        parts.append(reel.Part(dst, spec.frames))
    return parts


def kumpul(parts: list[reel.Part], overlap: int, folder: Path) -> tuple[float, Path]:
    scratch = folder / f"kumpul-{overlap}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    dst = scratch / "reel.mp4"
    started = time.perf_counter()
    reel.build(parts, reel.AudioPlan(overlap=overlap), dst, scratch, timeout=TIMEOUT)
    return time.perf_counter() - started, dst


def full_render(sources: list[Path], pieces: list[PieceSpec], overlap: int,
                folder: Path) -> tuple[float, Path]:
    """The same reel in one ffmpeg run from the renditions, after a loudness pass."""
    scratch = folder / f"full-{overlap}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    videos, audios = [], []
    for i, (src, spec) in enumerate(zip(sources, pieces, strict=True)):
        text = scratch / f"text-{i}"
        text.mkdir()
        inp = ffmpeg.input(str(src))
        v = (inp["v:0"].trim(start_frame=spec.start, end_frame=spec.start + spec.frames)
             .setpts("PTS-STARTPTS"))
        v = frame(v, (720, 1280), CANVAS)
        assert spec.caption is not None
        videos.append(lower_third(v, spec.caption, text, CANVAS.width, CANVAS.height)
                      .filter("format", "yuv420p"))
        start = spec.start * SAMPLES_PER_FRAME
        audios.append(inp["a:0"].filter("atrim", start_sample=start,
                                        end_sample=start + spec.frames * SAMPLES_PER_FRAME)
                      .filter("asetpts", "PTS-STARTPTS"))

    def audio_only() -> Any:
        if not overlap:
            return ffmpeg.filter(audios, "concat", n=len(audios), v=0, a=1)
        a = audios[0]
        for na in audios[1:]:
            a = ffmpeg.filter([a, na], "acrossfade", ns=overlap * SAMPLES_PER_FRAME,
                              c1="tri", c2="tri")
        return a

    def both() -> tuple[Any, Any]:
        if not overlap:
            streams = [s for pair in zip(videos, audios, strict=True) for s in pair]
            node = ffmpeg.concat(*streams, v=1, a=1).node
            return node[0], node[1]
        v, length = videos[0], pieces[0].frames
        for spec, nv in zip(pieces[1:], videos[1:], strict=True):
            v = ffmpeg.filter([v, nv], "xfade", transition="fade",
                              duration=f"{overlap / FPS:.6f}",
                              offset=f"{(length - overlap) / FPS:.6f}")
            length += spec.frames - overlap
        return v, audio_only()

    started = time.perf_counter()
    measured = subprocess.run(
        ffmpeg.output(audio_only().filter("ebur128", framelog="verbose"), "-", f="null")
        .compile(), capture_output=True, text=True, check=True)
    lufs = float(measured.stderr.rsplit("I:", 1)[1].split("LUFS")[0])
    v, a = both()
    a = a.filter("volume", f"{-16 - lufs:.2f}dB").filter(
        "alimiter", limit="0.8414", level=0, latency=1, attack=5, release=50)
    dst = scratch / "reel.mp4"
    out = ffmpeg.output(v, a, str(dst), f="mp4", acodec="aac", ar=SAMPLE_RATE, ac=2,
                        movflags="+faststart", **{"b:a": "160k", "aac_coder": "fast"},
                        **MEZZANINE.video_args())
    subprocess.run([*out.compile(), "-y", "-v", "error"], check=True)
    return time.perf_counter() - started, dst


def check(path: Path, expected: int) -> tuple[bool, float]:
    data = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "stream=codec_type,nb_read_packets,duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True).stdout)
    streams = {s["codec_type"]: s for s in data["streams"]}
    frames = int(streams["video"]["nb_read_packets"])
    drift = abs(float(streams["video"]["duration"]) - float(streams["audio"]["duration"]))
    return frames == expected, drift * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kumpul-bench-reel-"))
    try:
        print(f"generating and normalising {args.clips} clips of {args.seconds} s ...",
              flush=True)
        sources = make_sources(folder, args.clips, args.seconds)
        pieces = specs(args.clips, args.seconds)
        started = time.perf_counter()
        parts = render_pieces(sources, pieces, folder)
        cold = time.perf_counter() - started
        times: dict[str, list[float]] = {k: [] for k in ("hard", "hard_full", "xfade",
                                                          "xfade_full")}
        exact: list[bool] = []
        drift: list[float] = []
        for rep in range(args.reps):
            for overlap, key in ((0, "hard"), (OVERLAP, "xfade")):
                seconds, made = kumpul(parts, overlap, folder)
                times[key].append(seconds)
                ok, ms = check(made, reel.total_frames(parts, overlap))
                exact.append(ok)
                drift.append(ms)
                seconds, _ = full_render(sources, pieces, overlap, folder)
                times[f"{key}_full"].append(seconds)
                print(f"rep {rep + 1}: {key}: kumpul {times[key][-1]:.2f} s, "
                      f"full {seconds:.2f} s, frames exact {ok}, drift {ms:.1f} ms", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        hard, xfade = med["hard_full"] / med["hard"], med["xfade_full"] / med["xfade"]
        reel_s = reel.total_frames(parts, 0) / FPS
        print()
        print(f"{args.clips} clips x {args.seconds} s, canvas 9:16 720x1280, "
              f"{reel_s:.1f} s reel, median of {args.reps}")
        print("| reel | full re-encode | kumpul | speed-up |")
        print("|---|---|---|---|")
        print(f"| hard cut | {med['hard_full']:.2f} s | {med['hard']:.2f} s | {hard:.1f}x |")
        print(f"| crossfade 0.5 s | {med['xfade_full']:.2f} s | {med['xfade']:.2f} s | "
              f"{xfade:.1f}x |")
        print(f"pieces rendered the first time (once per clip, cached): {cold:.2f} s")
        print(f"RESULT hardcut_speedup={hard:.1f} crossfade_speedup={xfade:.1f} "
              f"frame_exact={int(all(exact))} av_drift_ms={max(drift):.2f} "
              f"pieces_cold_s={cold:.2f} hardcut_s={med['hard']:.3f} "
              f"crossfade_s={med['xfade']:.3f}")
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
