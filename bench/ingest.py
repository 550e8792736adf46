"""Ingest benchmark: the whole ingest job against the bare normalise of the same clip.

Run from the repository root: `.venv/bin/python bench/ingest.py [--reps 3] [--seconds 15]
[--heavy-seconds 180]`. A 1080x1920 phone-like clip is generated; each repetition runs,
interleaved, the bare `media.normalise.normalise` on a local file and the whole job
(`workers.ingest.ingest_clip`: download, probe, normalise, poster, filmstrip, upload, state
changes) on a fresh clip in a temporary embedded setup (SQLite, local store, Redis database
12).

The heavy case: a 3840x2160 60 fps H.264 High (B-frames, ~18 Mbit/s, like a phone's 4K60
within the 500 MB cap) clip of `--heavy-seconds` is sent to worker processes on the lanes
`kumpul serve` runs, and a 15 s phone clip right after it; each one's time from queueing
to `ready_for_review` is measured (baseline: the same 15 s clip's job alone, above).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis import Redis
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media.normalise import RenditionSpec, normalise  # noqa: E402
from media.probe import probe  # noqa: E402
from service import jobs  # noqa: E402
from service.db import migrate  # noqa: E402
from service.db.engine import async_sessions, make_async_engine  # noqa: E402
from service.db.models import Clip, User  # noqa: E402
from service.domain import accounts, clips, communities  # noqa: E402
from service.domain.clip_state import ClipState, transition  # noqa: E402
from service.domain.roles import Permission  # noqa: E402
from service.queue import Queues, lanes, redis_client  # noqa: E402
from service.settings import Settings, load_settings  # noqa: E402
from service.storage import open_store  # noqa: E402
from service.storage.keys import clip_source  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/12"


def make_clip(path: Path, seconds: int) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i",
                    f"testsrc2=s=1080x1920:r=30:d={seconds}", "-f", "lavfi", "-i",
                    f"anoisesrc=c=pink:r=48000:d={seconds},volume=-20dB", "-c:v", "libx264",
                    "-preset", "fast", "-crf", "20", "-c:a", "aac", "-shortest", str(path)],
                   check=True)


def new_clip(settings: Settings, source: Path) -> str:
    """A clip in `uploaded`, its source in the store: what the last PATCH leaves behind."""
    async def work() -> str:
        engine = make_async_engine(settings.async_database_url)
        async with async_sessions(engine).begin() as session:
            user = await session.scalar(select(User).limit(1))
            if user is None:
                user = await accounts.create_user(session, email="bench@example.com",
                                                  display_name="Bench",
                                                  password="bench password",  # noqa: S106
                                                  is_admin=True)
                await communities.create_community(session, name="Bench", slug="bench",
                                                   owner=user)
            access = await communities.require(session, user, "bench", Permission.view)
            clip = await clips.start_clip(session, access, release_version=1, title="bench",
                                          filename="bench.mp4", prompt=None)
            await session.flush()
            transition(clip, ClipState.uploaded)
            clip_id = clip.id
        await engine.dispose()
        return clip_id

    clip_id = asyncio.run(work())
    open_store(settings).put_file(clip_source(clip_id), source, "video/mp4")
    return clip_id


def make_heavy_clip(path: Path, seconds: int) -> None:
    """4 s of 4K60 encoded once, then joined by stream copy to the length asked (a 3-minute
    4K encode would take longer than the benchmark may)."""
    piece = path.with_suffix(".piece.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc2=s=3840x2160:r=60:d=4", "-f", "lavfi", "-i",
                    "anoisesrc=c=pink:r=48000:d=4,volume=-20dB", "-c:v", "libx264",
                    "-preset", "faster", "-profile:v", "high", "-b:v", "18M", "-maxrate", "22M",
                    "-bufsize", "30M", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(piece)], check=True)
    listing = path.with_suffix(".txt")
    listing.write_text("".join(f"file '{piece.name}'\n" for _ in range(-(-seconds // 4))))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "concat", "-safe", "0",
                    "-i", str(listing), "-t", str(seconds), "-c", "copy", str(path)],
                   check=True, cwd=path.parent)
    piece.unlink()


def clip_state(settings: Settings, clip_id: str) -> str:
    async def work() -> str:
        engine = make_async_engine(settings.async_database_url)
        async with async_sessions(engine).begin() as session:
            clip = await session.get(Clip, clip_id)
            state = clip.state if clip else "gone"
        await engine.dispose()
        return state

    return asyncio.run(work())


def heavy_case(settings: Settings, work: Path, heavy: Path, short: Path,
               limit: float) -> tuple[float, float]:
    """Seconds from queueing to ready: the heavy clip, and the short one sent right after."""
    queues = Queues(redis_client(settings.redis_url))
    env = {**os.environ, **settings.as_environ()}
    workers = [subprocess.Popen([sys.executable, "-m", "workers", *lane], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for lane in lanes(settings.embedded_workers)]
    try:
        time.sleep(3)  # the workers are listening
        heavy_id, short_id = new_clip(settings, heavy), new_clip(settings, short)
        started = {heavy_id: time.perf_counter()}
        jobs.ingest_clip(queues, heavy_id)
        time.sleep(0.5)  # "right after": the heavy job has been taken
        started[short_id] = time.perf_counter()
        jobs.ingest_clip(queues, short_id)
        ready: dict[str, float] = {}
        while len(ready) < 2:
            if time.perf_counter() - started[heavy_id] > limit:
                raise SystemExit("the heavy case did not finish in time")
            for clip_id in set(started) - set(ready):
                state = clip_state(settings, clip_id)
                if state == "ready_for_review":
                    ready[clip_id] = time.perf_counter() - started[clip_id]
                elif state in ("invalid", "failed"):
                    raise SystemExit(f"clip {clip_id} ended {state}")
            time.sleep(0.2)
        return ready[heavy_id], ready[short_id]
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--heavy-seconds", type=int, default=180,
                        help="length of the 4K60 clip (0 leaves the heavy case out)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kumpul-bench-ingest-"))
    Redis.from_url(REDIS_URL).flushdb()
    env = {"KUMPUL_DATA_DIR": str(work / "data"), "KUMPUL_REDIS_URL": REDIS_URL,
           "KUMPUL_LOG_LEVEL": "warning",
           "KUMPUL_SECRET_KEY": "bench-secret-key-that-is-long-enough-01234567"}
    settings = load_settings(env, env_file=None)
    os.environ.update(settings.as_environ())  # jobs read settings as a worker does
    from workers.ingest import ingest_clip  # after the environment is set

    try:
        migrate.upgrade(settings.sync_database_url)
        source = work / "phone.mp4"
        make_clip(source, args.seconds)
        info = probe(source, timeout=60)
        spec = RenditionSpec(long_side=settings.rendition_long_side)
        bare, whole = [], []
        for rep in range(args.reps):
            started = time.perf_counter()
            normalise(source, work / f"bare-{rep}.mp4", info, spec, timeout=600)
            bare.append(time.perf_counter() - started)
            clip_id = new_clip(settings, source)
            started = time.perf_counter()
            state = ingest_clip(clip_id)
            whole.append(time.perf_counter() - started)
            if state != "ready_for_review":
                raise SystemExit(f"the job ended {state}")
        if args.heavy_seconds:
            heavy = work / "phone-4k60.mp4"
            make_heavy_clip(heavy, args.heavy_seconds)
            heavy_s, short_s = heavy_case(settings, work, heavy, source,
                                          limit=max(600, 4 * args.heavy_seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        Redis.from_url(REDIS_URL).flushdb()

    b, w = statistics.median(bare), statistics.median(whole)
    print(f"\nIngest of a {args.seconds} s 1080x1920 H.264 + AAC clip, median of {args.reps} "
          "interleaved runs\n")
    print(f"{'run':44} {'median s':>9} {'ratio':>7}")
    print(f"{'bare normalise (loudness pass + encode)':44} {b:9.2f} {1.0:7.2f}")
    print(f"{'whole job (download..upload, states)':44} {w:9.2f} {w / b:7.2f}")
    print(f"\nready time / clip duration: {w / args.seconds:.3f}")
    extra = ""
    if args.heavy_seconds:
        print(f"\nHeavy case: a {args.heavy_seconds} s 3840x2160 60 fps clip, then the "
              f"{args.seconds} s clip right after it, on {settings.embedded_workers} worker "
              "lanes\n")
        print(f"{'clip':44} {'ready s':>9} {'ratio':>7}")
        print(f"{'4K60 (ready / its duration)':44} {heavy_s:9.2f} "
              f"{heavy_s / args.heavy_seconds:7.3f}")
        print(f"{'short clip behind it (ready / alone)':44} {short_s:9.2f} {short_s / w:7.2f}")
        extra = (f" heavy_ready_ratio={heavy_s / args.heavy_seconds:.3f} "
                 f"short_behind_heavy_s={short_s:.2f} heavy_s={heavy_s:.2f} "
                 f"heavy_clip_s={args.heavy_seconds}")
    print(f"RESULT overhead_ratio={w / b:.3f} ready_ratio={w / args.seconds:.3f} "
          f"bare_s={b:.2f} job_s={w:.2f} clip_s={args.seconds}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
