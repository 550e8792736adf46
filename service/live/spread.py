"""This node's rooms in a cluster of nodes (`cluster/nodes.py`): who is a room's origin,
which node serves which viewers, and the counts every node sees (`cluster/placement.py`).

- A room becomes this node's as its origin when a WHIP offer is taken here (`claim`); the
  claim's lease is renewed while the room lives, released when the session ends.
- A viewer this node serves of a room whose origin is elsewhere makes this node an edge
  of the room: it reads the room's frames from the origin (`relay.py`) while it has
  viewers, and lets go `IDLE_SECONDS` after its last one left.
- Every change of a room's viewers is written to Redis (this node's count) and the room is
  told the count over all nodes; the room's cap is checked over all nodes (`reserve`).
- A node that stops beating (`Nodes.on_lost`) has its counts and claims removed.

A single node is a cluster of one: it claims every room it is asked to publish, and its
counts are the room's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.exceptions import RedisError

from service.cluster.nodes import Node, Nodes
from service.cluster.placement import RENEW_SECONDS, Placement
from service.live import relay
from service.live.relay import Link
from service.live.rooms import Room, Rooms

log = logging.getLogger("kumpul.live")
IDLE_SECONDS = 10.0  # an edge keeps its relay this long after its last viewer left
READY_SECONDS = 4.0  # an edge waits this long for the origin's first answer
CHECK_SECONDS = 1.0


def public_state(room: Room) -> dict[str, str]:
    codecs = room.codecs()
    started = room.recorder.started_wall if room.recorder is not None else None
    return {"origin": room.node, "publishing": "1" if room.publishing else "0",
            "stage": "1" if room.on_stage("guest") else "0",
            "video_codec": codecs["video_codec"] or "",
            "audio_codec": codecs["audio_codec"] or "",
            # when the recording began (wall clock, ms): chat on any node is kept on its
            # timeline
            "recording_at": str(int(started * 1000)) if started is not None else ""}


class Spread:
    def __init__(self, rooms: Rooms, placement: Placement, nodes: Nodes, secret: str) -> None:
        self.rooms = rooms
        self.placement = placement
        self.nodes = nodes
        self.secret = secret
        rooms.adopt = self._adopt
        rooms.on_end = self._ended
        self._dirty: set[str] = set()
        self._syncing: asyncio.Task[None] | None = None
        self._pending: dict[str, int] = {}
        self._idle_since: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def node_id(self) -> str:
        return self.placement.node_id

    # --- rooms joining the cluster -----------------------------------------------------

    def _adopt(self, room: Room) -> None:
        room.node = self.node_id
        room.admit = self._admit
        room.on_change = self._changed
        if room.recorder is not None:
            room.recorder.on_start = lambda: self._changed(room)

    async def recording_ms(self, session_id: str) -> int:
        """Where on the room's recording timeline now falls, as its origin published it
        (0 before the recording began, or with Redis unreachable)."""
        try:
            state = (await self.placement.states([session_id]))[session_id]
        except RedisError:
            return 0
        started = state.get("recording_at", "")
        return max(0, int(time.time() * 1000) - int(started)) if started.isdigit() else 0

    async def _admit(self, room: Room) -> bool:
        """The room's cap over every node (Redis down: this node's own count decides)."""
        session_id = room.session_id
        self._pending[session_id] = self._pending.get(session_id, 0) + 1
        try:
            return await self.placement.reserve(
                session_id, len(room.viewers) + self._pending[session_id], room.max_viewers)
        except RedisError:
            log.warning("viewer cap checked on this node only (Redis unreachable)")
            return True
        finally:
            self._pending[session_id] -= 1
            if not self._pending[session_id]:
                del self._pending[session_id]

    def _changed(self, room: Room) -> None:
        self._dirty.add(room.session_id)
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.ensure_future(self._sync())

    async def _sync(self) -> None:
        """Counts and state to Redis, then the count over all nodes to the room."""
        while self._dirty:
            session_ids = sorted(self._dirty)
            self._dirty.clear()
            rooms = self.rooms.all()
            total = sum(len(r.viewers) for r in rooms)
            self.nodes.report(viewers=total, rooms=sum(1 for r in rooms if r.origin))
            for session_id in session_ids:
                room = self.rooms.find(session_id)
                count = len(room.viewers) if room is not None else 0
                overall = count
                try:
                    await self.placement.count(session_id, count, total)
                    if room is not None and room.origin:
                        await self.placement.publish_state(session_id, public_state(room))
                    overall = (await self.placement.totals([session_id]))[session_id]
                except RedisError:
                    log.warning("room counts not written (Redis unreachable)")
                if room is not None:
                    room.announce(overall)

    async def _ended(self, room: Room) -> None:
        with contextlib.suppress(RedisError):
            if room.origin:
                await self.placement.release(room.session_id)
        self._changed(room)

    # --- origin and edges --------------------------------------------------------------

    async def origin(self, session_id: str) -> Node | None:
        """The node holding the room's origin, if it is alive (a dead holder's claim and
        counts are removed at once)."""
        owner = await self.placement.origin(session_id)
        if owner is None:
            return None
        if owner == self.node_id:
            return self.nodes.me
        node = await self.nodes.get(owner)
        if node is None:
            await self.forget(owner)
        return node

    async def claim(self, session_id: str) -> str:
        """Make this node the room's origin unless another holds it; returns the holder."""
        owner = await self.placement.claim(session_id)
        if owner == self.node_id:
            room = self.rooms.get(session_id)
            if not room.origin:
                await room.stop_feed()  # it was an edge of an origin now gone
                room.origin = True
                self._changed(room)
        return owner

    async def edge(self, session_id: str) -> Room:
        """The room here, fed from its origin on another node (waiting briefly for it)."""
        room = self.rooms.get(session_id)
        if room.origin:
            return room
        self._idle_since.pop(session_id, None)
        feed = room.feed_from(lambda: self._dial(session_id),
                              lambda: self.rooms.end(session_id))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feed.ready.wait(), READY_SECONDS)
        return room

    async def _dial(self, session_id: str) -> Link | None:
        node = await self.origin(session_id)
        if node is None or node.id == self.node_id:
            return None
        return await relay.dial(node.url, session_id, self.secret)

    async def choose_viewer_node(self, session_id: str) -> Node | None:
        """Where a new viewer of the room goes: the least-loaded live node, the origin
        first (it serves alone until it holds its share). None: no origin (not live)."""
        origin = await self.origin(session_id)
        if origin is None:
            return None
        alive = await self.nodes.alive()
        loads = await self.placement.loads()
        candidates = [n for n in alive if n.id != origin.id] + [origin]
        return min(candidates, key=lambda n: (loads.get(n.id, 0), n.id != origin.id))

    # --- upkeep ------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                if time.monotonic() - renewed >= RENEW_SECONDS:
                    renewed = time.monotonic()
                    await self._renew()
                await self._let_go_of_idle()
            except RedisError:
                log.warning("room claims not renewed (Redis unreachable)")
            except Exception:
                log.exception("room upkeep failed")

    async def _renew(self) -> None:
        rooms = [r for r in self.rooms.all() if r.origin]
        for room in rooms:  # the public state outlives no origin by long
            await self.placement.publish_state(room.session_id, public_state(room))
        for session_id in await self.placement.renew([r.session_id for r in rooms]):
            owner = await self.placement.claim(session_id)  # the lease ran out: again
            if owner != self.node_id:
                log.warning("room origin taken by another node",
                            extra={"session": session_id, "node": owner})

    async def _let_go_of_idle(self) -> None:
        now = time.monotonic()
        for room in self.rooms.all():
            if room.feed is None or room.viewers:
                self._idle_since.pop(room.session_id, None)
                continue
            since = self._idle_since.setdefault(room.session_id, now)
            if now - since >= IDLE_SECONDS:
                self._idle_since.pop(room.session_id, None)
                await room.stop_feed()

    async def rejoin(self) -> None:
        """The others took this node for lost (its loop stalled) and removed its share:
        claim its rooms again and write its counts again (`Nodes.on_rejoin`)."""
        for room in self.rooms.all():
            if room.origin and await self.placement.claim(room.session_id) != self.node_id:
                log.warning("room origin taken by another node meanwhile",
                            extra={"session": room.session_id})
            self._changed(room)

    async def forget(self, node_id: str) -> None:
        """A node is gone: its counts and claims leave Redis (`Nodes.on_lost`)."""
        with contextlib.suppress(RedisError):
            await self.placement.forget(node_id)

    async def stop(self) -> None:
        """This node stops: its counts and claims leave Redis at once."""
        for task in (self._task, self._syncing):
            if task is not None and not task.done():
                if task is self._task:
                    task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(task, 5)
        await self.forget(self.node_id)
