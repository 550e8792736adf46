"""One writer per upload at a time, across app processes, through a Redis lock.

A lock names the app instance holding it. Each instance keeps a heartbeat key alive
(`Heartbeat`); a lock whose instance has stopped beating belongs to a crashed process
and is broken at once, so a phone can resume right after a restart. A lock whose holder is
alive (a phone that changed networks leaves its old request behind) is asked to let go: the
holder stores what it has received, ends its request and releases the lock, and the new
request takes it over within a moment instead of waiting for the lease to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from service.errors import Locked

LOCK_SECONDS = 120
BEAT_SECONDS = 5.0
RELEASE_WAIT = 5.0  # seconds a new request waits for a live holder to let go
RELEASE_POLL = 0.25  # how often a holder looks for a request to let go
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


def _lock_key(upload_id: str) -> str:
    return f"kumpul:upload-lock:{upload_id}"


def _release_key(upload_id: str) -> str:
    return f"kumpul:upload-release:{upload_id}"


class UploadLock:
    def __init__(self, redis: Redis, upload_id: str, token: str) -> None:
        self.redis = redis
        self.key = _lock_key(upload_id)
        self.upload_id = upload_id
        self.token = token

    async def release_requested(self) -> bool:
        """Whether another request asks this holder to let go."""
        return bool(await self.redis.exists(_release_key(self.upload_id)))

    async def extend(self) -> None:
        if not await self.redis.eval(_EXTEND, 1, self.key, self.token, LOCK_SECONDS):
            raise Locked("This upload was taken over by another request.",
                         hint="The upload resumes by itself.")


async def _take(redis: Redis, key: str, token: str) -> bool:
    """Take the lock if it is free, or if its holder's instance has died (broken at once)."""
    if await redis.set(key, token, nx=True, ex=LOCK_SECONDS):
        return True
    holder = await redis.get(key)
    holder_text = holder.decode() if isinstance(holder, bytes) else str(holder or "")
    holder_instance = holder_text.split(":")[0]
    if holder is not None and not await redis.exists(_beat_key(holder_instance)):
        await redis.eval(_RELEASE, 1, key, holder)  # only if it is still that one
        return bool(await redis.set(key, token, nx=True, ex=LOCK_SECONDS))
    return False


@contextlib.asynccontextmanager
async def upload_lock(redis: Redis, upload_id: str, instance: str, *,
                      wait: float = RELEASE_WAIT) -> AsyncIterator[UploadLock]:
    key = _lock_key(upload_id)
    token = f"{instance}:{secrets.token_hex(8)}"
    acquired = await _take(redis, key, token)
    if not acquired:  # a live holder: ask it to let go, and wait a moment for it
        await redis.set(_release_key(upload_id), token, ex=int(wait) + 30)
        deadline = time.monotonic() + wait
        while not acquired and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            acquired = await _take(redis, key, token)
        await redis.eval(_RELEASE, 1, _release_key(upload_id), token)
    if not acquired:
        raise Locked("Another request is writing to this upload.",
                     hint="Wait a moment; the upload resumes by itself.")
    try:
        yield UploadLock(redis, upload_id, token)
    finally:
        with contextlib.suppress(Exception):
            await redis.eval(_RELEASE, 1, key, token)
