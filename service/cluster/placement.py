"""Where a live room lives across nodes, kept in Redis.

- The room's *origin* (the node holding its publishers, recorder, stage and low layer) is
  claimed with `SET NX` and a lease the origin renews while it holds the room; a node that
  stops beating loses it at the latest when the lease runs out, sooner through
  `Nodes.on_lost` (`forget`).
- Viewers are counted per room and node (a hash per room, node -> count), each node
  writing its own count; the room's cap holds across nodes because a node admits a viewer
  only through `reserve`, one atomic check of every node's count.
- Each node's total of viewers (a hash, node -> count) says which node is least loaded.
- The origin writes the room's public state (publishing, stage, codecs), so every node
  lists the session the same way.
"""

from __future__ import annotations

import contextlib
from typing import Any

from redis.asyncio import Redis

LEASE_SECONDS = 15
RENEW_SECONDS = 5.0
NODE_LOADS = "kumpul:live-node-viewers"

_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
          "return redis.call('expire', KEYS[1], ARGV[2]) end return 0")
_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
            "redis.call('del', KEYS[2]) return redis.call('del', KEYS[1]) end return 0")
# reserve a viewer: the room's count over every node, this node's taken as ARGV[2], must
# stay within the cap ARGV[3]
_RESERVE = """
local counts = redis.call('hgetall', KEYS[1])
local total = 0
for i = 1, #counts, 2 do
  if counts[i] ~= ARGV[1] then total = total + tonumber(counts[i + 1]) end
end
if total + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def _origin(session_id: str) -> str:
    return f"kumpul:live:{session_id}:origin"


def _viewers(session_id: str) -> str:
    return f"kumpul:live:{session_id}:viewers"


def _state(session_id: str) -> str:
    return f"kumpul:live:{session_id}:state"


def _rooms_of(node_id: str) -> str:
    return f"kumpul:live-node:{node_id}:rooms"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Placement:
    """This node's view of (and writes to) the rooms' placement in Redis."""

    def __init__(self, redis: Redis, node_id: str) -> None:
        self.redis = redis
        self.node_id = node_id

    # --- the origin ---------------------------------------------------------------------

    async def claim(self, session_id: str) -> str:
        """Claim the room's origin for this node if nobody holds it; returns the holder."""
        key = _origin(session_id)
        if await self.redis.set(key, self.node_id, nx=True, ex=LEASE_SECONDS):
            await self.redis.sadd(_rooms_of(self.node_id), session_id)
            return self.node_id
        holder = await self.redis.get(key)
        if holder is None:  # it expired between the two calls: try once more
            return await self.claim(session_id)
        return _text(holder)

    async def origin(self, session_id: str) -> str | None:
        holder = await self.redis.get(_origin(session_id))
        return _text(holder) if holder is not None else None

    async def renew(self, session_ids: list[str]) -> list[str]:
        """Extend this node's claims; returns the rooms whose claim it no longer holds."""
        lost = []
        for session_id in session_ids:
            if not await self.redis.eval(_RENEW, 1, _origin(session_id),
                                         self.node_id, LEASE_SECONDS):
                lost.append(session_id)
        return lost

    async def release(self, session_id: str) -> None:
        """The room ended here: the claim and its public state go (only if still ours)."""
        await self.redis.eval(_RELEASE, 2, _origin(session_id),
                              _state(session_id), self.node_id)

    # --- viewers ------------------------------------------------------------------------

    async def reserve(self, session_id: str, count: int, cap: int) -> bool:
        """Admit one more viewer here (this node's count becomes `count`) if the room's
        count over every node stays within `cap`."""
        ok = bool(await self.redis.eval(_RESERVE, 1, _viewers(session_id),
                                        self.node_id, count, cap))
        if ok:
            await self.redis.sadd(_rooms_of(self.node_id), session_id)
        return ok

    async def count(self, session_id: str, count: int, node_total: int) -> None:
        """This node's viewers of the room, and of all its rooms, as they are now."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if count:
                pipe.hset(_viewers(session_id), self.node_id, count)
                pipe.sadd(_rooms_of(self.node_id), session_id)
            else:
                pipe.hdel(_viewers(session_id), self.node_id)
            pipe.hset(NODE_LOADS, self.node_id, node_total)
            await pipe.execute()

    async def viewers(self, session_id: str) -> dict[str, int]:
        """The room's viewers per node."""
        found = await self.redis.hgetall(_viewers(session_id))
        return {_text(k): int(v) for k, v in found.items()}

    async def totals(self, session_ids: list[str]) -> dict[str, int]:
        """Each room's viewers over every node."""
        if not session_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.hvals(_viewers(session_id))
            found = await pipe.execute()
        return {s: sum(int(v) for v in values) for s, values in zip(session_ids, found,
                                                                      strict=True)}

    async def loads(self) -> dict[str, int]:
        """Every node's viewers, all rooms together."""
        found = await self.redis.hgetall(NODE_LOADS)
        return {_text(k): int(v) for k, v in found.items()}

    # --- the room's public state ---------------------------------------------------------

    async def publish_state(self, session_id: str, state: dict[str, str]) -> None:
        fields: dict[Any, Any] = dict(state)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(_state(session_id), mapping=fields)
            pipe.expire(_state(session_id), LEASE_SECONDS * 4)
            await pipe.execute()

    async def states(self, session_ids: list[str]) -> dict[str, dict[str, str]]:
        if not session_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.hgetall(_state(session_id))
            found = await pipe.execute()
        return {s: {_text(k): _text(v) for k, v in state.items()}
                for s, state in zip(session_ids, found, strict=True)}

    # --- a node is gone -----------------------------------------------------------------

    async def forget(self, node_id: str) -> None:
        """A node stopped beating (or stops): its viewer counts, origin claims and the
        public state of its rooms go, so nothing counts people nobody serves."""
        rooms = await self.redis.smembers(_rooms_of(node_id))
        for raw in rooms:
            session_id = _text(raw)
            with contextlib.suppress(Exception):
                await self.redis.hdel(_viewers(session_id), node_id)
                await self.redis.eval(_RELEASE, 2, _origin(session_id),
                                      _state(session_id), node_id)
        await self.redis.delete(_rooms_of(node_id))
        await self.redis.hdel(NODE_LOADS, node_id)
