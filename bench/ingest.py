"""Ingest benchmark: the whole ingest job against the bare normalise of the same clip.

Run from the repository root: `.venv/bin/python bench/ingest.py [--reps 3] [--seconds 15]`.
A 1080x1920 phone-like clip is generated; each repetition runs, interleaved, the bare
`media.normalise.normalise` on a local file and the whole job (`workers.ingest.ingest_clip`:
download, probe, normalise, poster, filmstrip, upload, state changes) on a fresh clip in a
temporary embedded setup (SQLite, local store, Redis database 12).
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
from service.db import migrate  # noqa: E402
from service.db.engine import async_sessions, make_async_engine  # noqa: E402
from service.db.models import User  # noqa: E402
from service.domain import accounts, clips, communities  # noqa: E402
from service.domain.clip_state import ClipState, transition  # noqa: E402
from service.domain.roles import Permission  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
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
    print(f"RESULT overhead_ratio={w / b:.3f} ready_ratio={w / args.seconds:.3f} "
          f"bare_s={b:.2f} job_s={w:.2f} clip_s={args.seconds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
