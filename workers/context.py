"""What a job needs, made per job from the environment: settings, database, store, Redis."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from redis import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.engine import async_sessions, make_async_engine
from service.db.models import Clip
from service.events import clip_channel, clip_event, encode
from service.queue import redis_client
from service.settings import Settings, load_settings
from service.storage import ObjectStore, open_store

T = TypeVar("T")


class JobContext:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.store: ObjectStore = open_store(self.settings)
        self._redis: Redis | None = None

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = redis_client(self.settings.redis_url)
        return self._redis

    def db(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run domain code in one transaction (the domain is async; jobs are not)."""
        async def run() -> T:
            engine = make_async_engine(self.settings.async_database_url)
            try:
                async with async_sessions(engine).begin() as session:
                    return await work(session)
            finally:
                await engine.dispose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: a worker process has no loop of its own
            return asyncio.run(run())
        with ThreadPoolExecutor(1) as pool:  # called from inside a loop: use a thread's own
            return pool.submit(asyncio.run, run()).result()

    def scratch(self, name: str) -> Path:
        """A private, empty folder for one job; wiped at start (a retry starts clean)."""
        path = self.settings.data_dir / "scratch" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, mode=0o700)
        return path

    def announce(self, clip: Clip) -> None:
        """Tell the member's open pages that the clip changed."""
        self.redis.publish(clip_channel(clip.community_id, clip.member_id),
                           encode(clip_event(clip)))
