"""Fixed-window counters in Redis, for login attempts and other abuse-prone actions."""

from __future__ import annotations

from redis.asyncio import Redis

from service.errors import TooManyRequests


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str = "kumpul:rl:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def check(self, key: str, limit: int, *, message: str,
                    code: str = "too_many_attempts", **params: object) -> None:
        """Raise 429 (with Retry-After) if `key` already used up its window."""
        full = self.prefix + key
        count = await self.redis.get(full)
        if count is not None and int(count) >= limit:
            ttl = max(int(await self.redis.ttl(full)), 1)
            raise TooManyRequests(message, code=code,
                                  hint="Wait %(wait_seconds)s and try again.", wait_seconds=ttl,
                                  headers={"Retry-After": str(ttl)}, **params)

    async def count(self, key: str) -> int:
        found = await self.redis.get(self.prefix + key)
        return int(found or 0)

    async def hit(self, key: str, window: int) -> int:
        full = self.prefix + key
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(full)
            pipe.expire(full, window, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def reset(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)
