"""Highlights benchmark: what the moment finder costs on a long session, against one bare
decode of the same recording (the least any reading of it costs), in the same run.

Run from the repository root: `.venv/bin/python bench/moments.py [--minutes 5] [--reps 3]`.

- The recording is generated like a session's web rendition: 1280x720 30 fps H.264 with a
  0.5 s GOP, AAC; a talk-level tone with a loud minute-by-minute burst, and a cut every
  2 minutes.
- Signals: `media.signals.momentary_loudness` and `media.signals.scene_changes`, the two
  passes the finder job makes once per session. Baseline: `ffmpeg -i rec -f null -`.
- Re-scoring: `media.moments.find` over the per-second signals with 3,000 reactions and
  600 messages, what "Find again" costs once the signals are kept.
- Cut: `media.cut.cut` of a 20 s moment from the middle of the recording.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media.cut import cut  # noqa: E402
from media.moments import Signals, find  # noqa: E402
from media.signals import momentary_loudness, scene_changes  # noqa: E402


def recording(path: Path, minutes: int) -> None:
    seconds = minutes * 60
    subprocess.run([
        "ffmpeg", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=s=1280x720:r=30:d={seconds}",
        "-f", "lavfi", "-i", f"color=c=navy:s=1280x720:r=30:d={seconds}",
        "-f", "lavfi", "-i",
        f"sine=f=220:d={seconds},volume='if(lt(mod(t,60),2),1,0.05)':eval=frame",
        "-filter_complex", "[0][1]blend=all_expr='if(lt(mod(T,240),120),A,B)'[v]",
        "-map", "[v]", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15",
        "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)], check=True)


def timed(work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kumpul-bench-moments-"))
    try:
        rec = folder / "web.mp4"
        recording(rec, args.minutes)
        duration = args.minutes * 60.0
        limit = duration * 4
        bare, signals, rescore, cuts = [], [], [], []
        found: dict[str, object] = {}
        for _ in range(args.reps):  # interleaved
            bare.append(timed(lambda: subprocess.run(
                ["ffmpeg", "-v", "error", "-i", str(rec), "-f", "null", "-"], check=True)))

            def measure() -> None:
                found["loudness"] = momentary_loudness(rec, timeout=limit)
                found["scenes"] = scene_changes(rec, timeout=limit)

            signals.append(timed(measure))
            loud: dict[int, float] = {}
            for t, lufs in found["loudness"]:  # type: ignore[attr-defined]
                loud[int(t)] = max(loud.get(int(t), -70.0), lufs)
            rng = random.Random(7)
            reactions = [rng.uniform(0, duration) for _ in range(3000)]
            messages = [rng.uniform(0, duration) for _ in range(600)]
            per_second = sorted(loud.items())
            kept = Signals(duration=duration, reactions=reactions, messages=messages,
                           loudness=per_second, scenes=found["scenes"])  # type: ignore[arg-type]
            rescore.append(timed(lambda kept=kept: found.__setitem__("moments", find(kept))))
            cuts.append(timed(lambda: cut(rec, folder / "moment.mp4", start=duration / 2,
                                          seconds=20, timeout=limit)))
        b, s = statistics.median(bare), statistics.median(signals)
        r, c = statistics.median(rescore), statistics.median(cuts)
        print(f"\nMoment finder on a {args.minutes} min 1280x720 recording, median of "
              f"{args.reps} interleaved runs\n")
        print(f"{'step':44} {'seconds':>9} {'x real time':>12} {'ratio':>7}")
        print(f"{'bare decode (baseline)':44} {b:9.2f} {duration / b:12.1f} {1.0:7.2f}")
        print(f"{'signals: loudness + scene changes (once)':44} {s:9.2f} {duration / s:12.1f} "
              f"{s / b:7.2f}")
        print(f"{'find again: re-score kept signals':44} {r:9.4f}")
        print(f"{'cut a 20 s moment (frame-exact)':44} {c:9.2f}")
        moments = found["moments"]
        print(f"\n{len(moments)} moments proposed; scene changes found: "  # type: ignore[arg-type]
              f"{len(found['scenes'])}")  # type: ignore[arg-type]
        print(f"RESULT signals_ratio={s / b:.2f} signals_realtime_x={duration / s:.1f} "
              f"rescore_ms={r * 1000:.1f} cut_s={c:.2f} minutes={args.minutes}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
