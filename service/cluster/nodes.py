"""The nodes of a cluster: every `kumpul web` process registers itself in Redis and beats.

A node is a hash `kumpul:node:{id}` (its address for node-to-node requests, its ICE
addresses and media port, its load) with a short TTL that each beat renews, and a member of
the set `kumpul:nodes`. A node that stops beating (SIGKILL, a machine gone, a network cut)
disappears by itself; every other node notices within a few seconds and calls its
`on_lost` callbacks with the lost id, so whatever that node held in Redis (presence,
viewer counts, origin claims) can be cleared. One `kumpul web` is a cluster of one.

Loss is judged by Redis's own clock (the key's remaining TTL tells the age of the last
beat), so nodes on machines whose clocks disagree agree on who is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

log = logging.getLogger("kumpul.cluster")

NODES_KEY = "kumpul:nodes"
BEAT_SECONDS = 2.0
TTL_SECONDS = 6.0    # a node's key outlives three beats
LOST_SECONDS = 4.5   # no beat for this long (two beats missed, and most of a third): lost
WATCH_SECONDS = 0.5  # how often a node looks for lost ones


def node_key(node_id: str) -> str:
    return f"kumpul:node:{node_id}"


@dataclass(frozen=True)
class Node:
    id: str                         # random per process start: the Heartbeat's instance id
    url: str                        # base URL other nodes reach this node at
    ice_addresses: tuple[str, ...]  # the host candidates viewers get from this node
    rtc_udp_port: int | None        # this node's one media UDP port, None if per connection
    viewers: int = 0                # live viewers this node serves now (edge or origin)
    rooms: int = 0                  # rooms this node is origin of
    cpu: float = 0.0                # this process's CPU share over the last beat (of a core)
    beat_at: float = 0.0            # unix time of the last beat

    def fields(self) -> dict[str, str]:
        return {"id": self.id, "url": self.url, "ice_addresses": ",".join(self.ice_addresses),
                "rtc_udp_port": str(self.rtc_udp_port or ""), "viewers": str(self.viewers),
                "rooms": str(self.rooms), "cpu": f"{self.cpu:.4f}",
                "beat_at": f"{self.beat_at:.3f}"}

    @classmethod
    def parse(cls, raw: dict[bytes, bytes] | dict[str, str]) -> Node | None:
        """A node from its hash, or None when the hash is gone or not a node's."""
        got = {(k.decode() if isinstance(k, bytes) else k):
               (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
        try:
            return cls(id=got["id"], url=got["url"],
                       ice_addresses=tuple(a for a in got.get("ice_addresses", "").split(",")
                                           if a),
                       rtc_udp_port=int(got["rtc_udp_port"]) if got.get("rtc_udp_port")
                       else None,
                       viewers=int(got.get("viewers") or 0), rooms=int(got.get("rooms") or 0),
                       cpu=float(got.get("cpu") or 0), beat_at=float(got.get("beat_at") or 0))
        except (KeyError, ValueError):
            return None


Lost = Callable[[str], Awaitable[None]]


def _fresh(ttl_ms: int) -> bool:
    """Whether a node key's remaining lifetime says it beat within `LOST_SECONDS` (-1: a key
    without expiry, kept by hand; -2: no key)."""
    return ttl_ms == -1 or ttl_ms > int((TTL_SECONDS - LOST_SECONDS) * 1000)


class Nodes:
    """This node's registration and beat, and the cluster as this node sees it."""

    def __init__(self, redis: Redis, me: Node) -> None:
        self.redis = redis
        self.me = me
        self._viewers = me.viewers
        self._rooms = me.rooms
        self._lost: list[Lost] = []
        self._rejoin: list[Callable[[], Awaitable[None]]] = []
        self._beaten = False
        self._known: set[str] = set()     # other nodes seen beating
        self._reported: set[str] = set()  # lost ids already told to the callbacks
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._mark = (time.monotonic(), time.process_time())

    # --- this node ----------------------------------------------------------------------

    def report(self, *, viewers: int | None = None, rooms: int | None = None) -> None:
        """Counts the next beat carries."""
        if viewers is not None:
            self._viewers = viewers
        if rooms is not None:
            self._rooms = rooms

    async def start(self) -> None:
        """Register now, then beat every 2 s and watch for lost nodes every 0.5 s."""
        with contextlib.suppress(Exception):  # Redis down: the beat retries
            await self._beat()
        self._task = asyncio.create_task(self._run(), name="kumpul-nodes")

    async def stop(self) -> None:
        """Deregister at once: the others need not wait for the key to lapse."""
        self._stopping.set()
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=TTL_SECONDS)
            for task in pending:
                task.cancel()
        with contextlib.suppress(Exception):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(node_key(self.me.id))
                pipe.srem(NODES_KEY, self.me.id)
                await asyncio.wait_for(pipe.execute(), TTL_SECONDS)

    def on_lost(self, callback: Lost) -> None:
        """`callback(node_id)` runs on this node when another node stops beating."""
        self._lost.append(callback)

    def on_rejoin(self, callback: Callable[[], Awaitable[None]]) -> None:
        """`callback()` runs when this node beats again after the others took it for lost
        (its event loop stalled past `LOST_SECONDS`): it re-announces what it holds."""
        self._rejoin.append(callback)

    async def _beat(self) -> None:
        now, cpu_now = time.monotonic(), time.process_time()
        then, cpu_then = self._mark
        self._mark = (now, cpu_now)
        cpu = (cpu_now - cpu_then) / (now - then) if now > then else 0.0
        self.me = dataclasses.replace(self.me, viewers=self._viewers, rooms=self._rooms,
                                      cpu=round(max(cpu, 0.0), 4), beat_at=time.time())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.pttl(node_key(self.me.id))
            pipe.hset(node_key(self.me.id), mapping=cast("dict[Any, Any]", self.me.fields()))
            pipe.pexpire(node_key(self.me.id), int(TTL_SECONDS * 1000))
            pipe.sadd(NODES_KEY, self.me.id)
            left, *_ = await pipe.execute()
        was_lost = self._beaten and not _fresh(int(left))
        self._beaten = True
        if was_lost:
            log.warning("this node was taken for lost; announcing itself again")
            for callback in self._rejoin:
                try:
                    await callback()
                except Exception:
                    log.exception("announcing this node again failed")

    async def _run(self) -> None:
        # Stopped by an event, not by cancellation (see locks.Heartbeat).
        next_beat = time.monotonic() + BEAT_SECONDS
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), WATCH_SECONDS)
            if self._stopping.is_set():
                break
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + BEAT_SECONDS
                    await self._beat()
                await self._watch()
            except Exception:  # Redis away for a moment: beat and watch again next turn
                log.warning("node beat failed", exc_info=True)

    # --- the others ---------------------------------------------------------------------

    async def _ages(self) -> dict[str, int]:
        """Every registered node's key's remaining lifetime in ms (-2 when it is gone)."""
        ids = sorted(m.decode() if isinstance(m, bytes) else str(m)
                     for m in await self.redis.smembers(NODES_KEY))
        if not ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for node_id in ids:
                pipe.pttl(node_key(node_id))
            ttls = await pipe.execute()
        return dict(zip(ids, (int(t) for t in ttls), strict=True))

    async def _watch(self) -> None:
        ttls = await self._ages()
        beating = {i for i, ttl in ttls.items() if _fresh(ttl)}
        gone = [i for i, ttl in ttls.items() if ttl == -2]
        if gone:
            await self.redis.srem(NODES_KEY, *gone)
        lost = ((self._known | set(ttls)) - beating - {self.me.id}) - self._reported
        self._known = beating - {self.me.id}
        self._reported = (self._reported | lost) & set(ttls)  # forget ids no longer listed
        for node_id in sorted(lost):
            log.warning("node lost", extra={"node": node_id})
            for callback in self._lost:
                try:
                    await callback(node_id)
                except Exception:
                    log.exception("clearing a lost node's state failed",
                                  extra={"node": node_id})

    async def alive(self) -> list[Node]:
        """The nodes beating now (this one included; one whose last beat is older than
        `LOST_SECONDS` is not); prunes the set of nodes whose key has lapsed."""
        ttls = await self._ages()
        gone = [i for i, ttl in ttls.items() if ttl == -2]
        if gone:
            await self.redis.srem(NODES_KEY, *gone)
        ids = [i for i, ttl in ttls.items() if _fresh(ttl)]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for node_id in ids:
                pipe.hgetall(node_key(node_id))
            rows = await pipe.execute()
        return [node for node in (Node.parse(row) for row in rows) if node is not None]

    async def get(self, node_id: str) -> Node | None:
        return Node.parse(cast("dict[bytes, bytes]", await self.redis.hgetall(node_key(node_id))))
