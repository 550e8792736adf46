"""A worker killed mid-transcode: the reconciler re-queues, the clip still gets one rendition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip, utcnow
from service.settings import Settings
from service.storage import open_store
from tests import media_files
from tests.conftest import World, child_pids, run_db, settings_env
from tests.uploads.conftest import upload_all
from workers import jobs
from workers.context import JobContext

pytestmark = pytest.mark.slow  # kills a worker mid-transcode


def clip_row(settings: Settings) -> Clip:
    async def work(session: AsyncSession) -> Clip:
        clip = await session.scalar(select(Clip))
        assert isinstance(clip, Clip)
        return clip

    return run_db(settings, work)


def ffmpeg_processes_for(clip_id: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", f"ingest-{clip_id}"], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "ffmpeg" in line]


def test_sigkill_mid_transcode(world: World, settings: Settings, tmp_path: Path,
                               jobs_here: JobContext) -> None:
    owner = world.admin()
    slug = world.community(owner)
    member = world.join(owner, slug)
    video = media_files.story_mp4(tmp_path / "long.mp4", seconds=12, size="1080x1920")
    upload_all(member, slug, video.read_bytes())
    clip_id = clip_row(settings).id
    redis = Redis.from_url(settings.redis_url)

    worker = subprocess.Popen([sys.executable, "-m", "workers", "ingest"],
                              env=settings_env(settings), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the encode is well under way
            progress = Job.fetch(f"ingest-{clip_id}", connection=redis).meta.get("progress", 0)
            if progress >= 0.1:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the transcode never got going")
        assert clip_row(settings).state == "processing"
    finally:
        # As a crash would: the worker and its work horse (RQ gives the horse a session of
        # its own). The encoder is left alone: it must die with the horse by itself.
        horses = child_pids(worker.pid)
        for pid in (worker.pid, *horses):
            os.kill(pid, signal.SIGKILL)
        worker.wait(10)
    time.sleep(0.5)
    assert ffmpeg_processes_for(clip_id) == [], "the encoder died with its worker"
    assert clip_row(settings).state == "processing"  # stuck, as after a real crash

    assert jobs.reconcile() == 0  # not overdue yet: nothing happens

    async def overdue(session: AsyncSession) -> None:
        await session.execute(update(Clip).values(deadline_at=utcnow() - timedelta(seconds=1)))

    run_db(settings, overdue)
    assert jobs.reconcile() == 1
    assert jobs.reconcile() == 0  # re-queued once, with a fresh deadline

    done = subprocess.run([sys.executable, "-m", "service.cli", "worker", "ingest", "--burst"],
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    clip = clip_row(settings)
    assert clip.state == "ready_for_review" and clip.version == 1
    assert clip.rendition["video"]["display_size"] == [720, 1280]
    keys = sorted(info.key for info in open_store(settings).list(f"clips/{clip_id}/"))
    assert keys == [f"clips/{clip_id}/source", f"clips/{clip_id}/v1/filmstrip.jpg",
                    f"clips/{clip_id}/v1/poster.jpg", f"clips/{clip_id}/v1/web.mp4"]
    scratch = settings.data_dir / "scratch"
    assert not scratch.exists() or list(scratch.iterdir()) == []
