"""Faults the product must survive without losing or doubling work: a worker killed in the
middle of a reel render, and Redis stopped and started again with jobs queued (losing them).
The database is the source of truth; the reconciler re-queues what is overdue.

(A worker killed mid-ingest: `tests/workers/test_recovery.py`; the app restarted in the
middle of an upload, resuming with an identical SHA-256: `tests/uploads/test_clients.py`.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip, Reel, utcnow
from service.settings import Settings
from service.storage import open_store
from tests import media_files
from tests.conftest import World, child_pids, free_port, run_db, settings_env, wait_for_port
from tests.studio import Studio
from tests.uploads.conftest import upload_all
from workers import jobs
from workers.context import JobContext

pytestmark = pytest.mark.slow  # kills workers and Redis


class RedisServer:
    """A redis-server of the test's own (no persistence), to stop and start at will."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 10)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


def worker(settings: Settings, *queues: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "workers", *queues],
                            env=settings_env(settings), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def burst(settings: Settings, *queues: str) -> None:
    done = subprocess.run([sys.executable, "-m", "service.cli", "worker", *queues, "--burst"],
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr


def kill_worker(proc: subprocess.Popen[bytes]) -> None:
    """As a crash would: the worker and its work horse; their ffmpeg dies with them."""
    for pid in (proc.pid, *child_pids(proc.pid)):
        os.kill(pid, signal.SIGKILL)
    proc.wait(10)


def reel_row(settings: Settings, reel_id: str) -> Reel:
    async def work(session: AsyncSession) -> Reel:
        reel = await session.get(Reel, reel_id)
        assert reel is not None
        return reel

    return run_db(settings, work)


def test_a_worker_killed_mid_render_leaves_one_render(studio: Studio,
                                                      settings: Settings) -> None:
    for clip in studio.clips:
        assert studio.moderator.post(studio.api(f"/review/{clip}/approve")).status_code == 200
    made = studio.moderator.post(studio.api("/reels"), json={"title": "Crash test"})
    reel_id = made.json()["id"]
    items = [{"clip_id": c} for c in studio.clips]
    changed = studio.moderator.patch(studio.api(f"/reels/{reel_id}"), json={
        "items": items, "transition": "crossfade"})
    assert changed.status_code == 200, changed.text
    asked = studio.moderator.post(studio.api(f"/reels/{reel_id}/render"))
    assert asked.status_code == 202, asked.text

    proc = worker(settings, "reels")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                "ffmpeg" in line for pid in child_pids(proc.pid)
                for line in subprocess.run(["pgrep", "-P", str(pid), "-a"],
                                           capture_output=True, text=True).stdout.splitlines()):
            time.sleep(0.05)  # until the horse is encoding
        assert time.monotonic() < deadline, "the render never got going"
    finally:
        kill_worker(proc)
    assert reel_row(settings, reel_id).state == "rendering"  # stuck, as after a real crash

    assert jobs.reconcile() == 0  # not overdue yet

    async def overdue(session: AsyncSession) -> None:
        await session.execute(update(Reel).values(deadline_at=utcnow() - timedelta(seconds=1)))

    run_db(settings, overdue)
    assert jobs.reconcile() == 1
    assert jobs.reconcile() == 0  # re-queued once
    burst(settings, "reels")

    reel = reel_row(settings, reel_id)
    assert reel.state == "rendered" and reel.rendered_version == 1
    store = open_store(settings)
    assert sorted(i.key for i in store.list(f"reels/{reel_id}/")) == [
        f"reels/{reel_id}/v1/{name}" for name in ("manifest.json", "poster.jpg", "reel.mp4")]
    for clip in studio.clips:  # one piece per clip, however many times it was started
        pieces = [i.key for i in store.list(f"clips/{clip}/pieces/")]
        assert len(pieces) == 1, pieces
    scratch = settings.data_dir / "scratch"
    assert not scratch.exists() or list(scratch.iterdir()) == []


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The app, its workers and the test talk to the Redis this test stops and starts."""
    return redis_server.url


def clip_states(settings: Settings) -> list[str]:
    async def work(session: AsyncSession) -> list[str]:
        return list(await session.scalars(select(Clip.state).order_by(Clip.created_at)))

    return run_db(settings, work)


def test_redis_restarted_with_jobs_queued(world: World, settings: Settings,
                                          redis_server: RedisServer, tmp_path: Path,
                                          jobs_here: JobContext) -> None:
    owner = world.admin()
    slug = world.community(owner)
    members = [world.join(owner, slug, "member", f"Member {n}") for n in range(3)]
    for n, member in enumerate(members):
        story = media_files.story_mp4(tmp_path / f"s{n}.mp4", 2)
        upload_all(member, slug, story.read_bytes())
    redis = Redis.from_url(redis_server.url)
    assert redis.llen("rq:queue:ingest") == 3  # queued, no worker yet
    assert clip_states(settings) == ["uploaded"] * 3

    redis_server.kill()  # the queue is gone with it (no persistence)
    redis_server.start()
    assert redis.llen("rq:queue:ingest") == 0
    burst(settings, "ingest")  # a worker finds nothing to do ...
    assert clip_states(settings) == ["uploaded"] * 3  # ... and nothing was lost: rows remain

    assert jobs.reconcile() == 0  # within their deadline: left alone

    async def overdue(session: AsyncSession) -> None:
        await session.execute(update(Clip).values(deadline_at=utcnow() - timedelta(seconds=1)))

    run_db(settings, overdue)
    assert jobs.reconcile() == 3
    burst(settings, "ingest")
    assert clip_states(settings) == ["ready_for_review"] * 3
    assert jobs.reconcile() == 0  # nothing stuck

    # the app itself lives through the restart: its next request reaches the new Redis
    ready = world.client.get("/readyz")
    assert ready.status_code == 200, ready.text
