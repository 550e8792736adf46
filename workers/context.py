"""What a job needs, made per job from the environment: settings, database, store, Redis."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from redis import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.db.engine import async_sessions, make_async_engine
from service.db.models import Clip
from service.events import clip_channel, clip_event, encode
from service.queue import redis_client
from service.settings import Settings, load_settings
from service.storage import ObjectStore, open_store

T = TypeVar("T")


class JobContext:
    """One job's connections. Close it (or use it as a context manager) when the job ends."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.store: ObjectStore = open_store(self.settings)
        self._redis: Redis | None = None
        self._runner: asyncio.Runner | None = None
        self._engine: AsyncEngine | None = None

    def __enter__(self) -> JobContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = redis_client(self.settings.redis_url)
        return self._redis

    def db(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run domain code in one transaction (the domain is async; jobs are not). One loop
        and one engine serve all of a job's calls."""
        async def run() -> T:
            if self._engine is None:
                self._engine = make_async_engine(self.settings.async_database_url)
            async with async_sessions(self._engine).begin() as session:
                return await work(session)

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: a worker process has no loop of its own
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(run())
        with ThreadPoolExecutor(1) as pool:  # called from inside a loop: use a thread's own
            return pool.submit(self._isolated, work).result()

    def _isolated(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def run() -> T:
            engine = make_async_engine(self.settings.async_database_url)
            try:
                async with async_sessions(engine).begin() as session:
                    return await work(session)
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def close(self) -> None:
        if self._runner is not None:
            if self._engine is not None:
                self._runner.run(self._engine.dispose())
            self._runner.close()
            self._runner = self._engine = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None

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
