"""What jobs need, kept once per worker process: settings, the database, the store, Redis.

`context()` makes it from the environment on first use in the process that runs a job (RQ
runs each job in a forked work horse, so every job's process makes its own). Tests that run
jobs inline set theirs with `use()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from redis import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service import effects
from service.db.engine import async_sessions, make_async_engine
from service.mail import Transport, open_transport
from service.queue import Queues, redis_client
from service.settings import Settings, load_settings
from service.storage import ObjectStore, open_store

T = TypeVar("T")


class JobContext:
    """A process's connections for its jobs. `close()` when done with it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: ObjectStore = open_store(settings)
        self.pid = os.getpid()
        self._redis: Redis | None = None
        self._runner: asyncio.Runner | None = None
        self._engine: AsyncEngine | None = None

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = redis_client(self.settings.redis_url)
        return self._redis

    def db(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run domain code in one transaction, then carry out the jobs and events it caused
        (`service.effects`). The domain is async, jobs are not: one loop and one engine serve
        all of a process's calls."""
        async def run(engine: AsyncEngine) -> tuple[T, list[effects.Effect]]:
            async with async_sessions(engine).begin() as session:
                result = await work(session)
                caused = effects.take(session)
            return result, caused

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: a worker process has no loop of its own
            if self._runner is None:
                self._runner = asyncio.Runner()
            if self._engine is None:
                self._engine = make_async_engine(self.settings.async_database_url)
            result, caused = self._runner.run(run(self._engine))
        else:  # called from inside a loop (a test's): a thread with a loop of its own
            with ThreadPoolExecutor(1) as pool:
                result, caused = pool.submit(self._isolated, run).result()
        if caused:
            effects.carry_out(caused, Queues(self.redis))
        return result

    def mail(self, work: Callable[[Transport], Awaitable[T]]) -> T:
        """Run `work` with a mail transport of this process's settings (one connection for
        the whole of it), on the same loop as `db`."""
        async def run() -> T:
            transport = open_transport(self.settings)
            try:
                return await work(transport)
            finally:
                await transport.close()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(run())
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result()

    def _isolated(self, run: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        async def once() -> T:
            engine = make_async_engine(self.settings.async_database_url)
            try:
                return await run(engine)
            finally:
                await engine.dispose()

        return asyncio.run(once())

    def fetch(self, key: str, path: Path) -> str:
        """Download an object to a private path (never hand ffmpeg a URL); its SHA-256."""
        digest = hashlib.sha256()
        with path.open("wb") as fh:
            for chunk in self.store.get(key):
                digest.update(chunk)
                fh.write(chunk)
        return digest.hexdigest()

    def scratch(self, name: str) -> Path:
        """A private, empty folder for one job; wiped at start (a retry starts clean)."""
        path = self.settings.data_dir / "scratch" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, mode=0o700)
        return path

    def close(self) -> None:
        if self._runner is not None:
            if self._engine is not None:
                self._runner.run(self._engine.dispose())
            self._runner.close()
        self._runner = self._engine = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None


_current: JobContext | None = None


def context() -> JobContext:
    """This process's context, made from the environment the first time a job asks."""
    global _current
    if _current is None or _current.pid != os.getpid():  # a forked child makes its own
        _current = JobContext(load_settings())
    return _current


def use(ctx: JobContext | None) -> JobContext | None:
    """Make `ctx` the context jobs in this process use (tests); returns the one before."""
    global _current
    previous, _current = _current, ctx
    return previous
