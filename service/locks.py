"""One writer per upload at a time, across app processes, through a Redis lock.

A lock names the app instance holding it. Each instance keeps a heartbeat key alive
(`Heartbeat`); a lock whose instance has stopped beating belongs to a crashed process
and is broken at once, so a phone can resume right after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from service.errors import Locked

LOCK_SECONDS = 120
BEAT_SECONDS = 5.0
_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) end return 0")
_EXTEND = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
           "return redis.call('expire', KEYS[1], ARGV[2]) end return 0")


def _beat_key(instance: str) -> str:
    return f"kumpul:instance:{instance}"


class Heartbeat:
    """Marks this app instance alive while it runs."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.instance = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def _run(self) -> None:
        # Stopped by an event, not by cancellation: a cancel landing inside a Redis call can
        # be swallowed by the client, and shutdown would then wait for ever.
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):  # Redis down: locks simply can't be taken
                await self.redis.set(_beat_key(self.instance), "1", ex=int(BEAT_SECONDS))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), BEAT_SECONDS / 3)

    async def start(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.set(_beat_key(self.instance), "1", ex=int(BEAT_SECONDS))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=BEAT_SECONDS)
            for task in pending:  # stuck in a call that will not end: leave it cancelled
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.delete(_beat_key(self.instance)), BEAT_SECONDS)


class UploadLock:
    def __init__(self, redis: Redis, key: str, token: str) -> None:
        self.redis = redis
        self.key = key
        self.token = token

    async def extend(self) -> None:
        if not await self.redis.eval(_EXTEND, 1, self.key, self.token, LOCK_SECONDS):
            raise Locked("This upload was taken over by another request.",
                         hint="The upload resumes by itself.")


@contextlib.asynccontextmanager
async def upload_lock(redis: Redis, upload_id: str, instance: str) -> AsyncIterator[UploadLock]:
    key = f"kumpul:upload-lock:{upload_id}"
    token = f"{instance}:{secrets.token_hex(8)}"
    acquired = await redis.set(key, token, nx=True, ex=LOCK_SECONDS)
    if not acquired:
        holder = await redis.get(key)
        holder_text = holder.decode() if isinstance(holder, bytes) else str(holder or "")
        holder_instance = holder_text.split(":")[0]
        if holder is not None and not await redis.exists(_beat_key(holder_instance)):
            # The holder crashed: break its lock (only if it is still that one) and retry.
            await redis.eval(_RELEASE, 1, key, holder)
            acquired = await redis.set(key, token, nx=True, ex=LOCK_SECONDS)
    if not acquired:
        raise Locked("Another request is writing to this upload.",
                     hint="Wait a moment; the upload resumes by itself.")
    try:
        yield UploadLock(redis, key, token)
    finally:
        with contextlib.suppress(Exception):
            await redis.eval(_RELEASE, 1, key, token)
