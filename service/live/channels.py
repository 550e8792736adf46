"""The room channels this node serves, and what the room learns when a node is lost."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from service.live.channel import Channel, Forget, Persist
from service.live.roomstate import RoomState, node_sessions_key


class Channels:
    def __init__(self, redis: Redis, node_id: str) -> None:
        self.redis = redis
        self.node_id = node_id
        self._channels: dict[str, Channel] = {}

    def open(self, session_id: str, persist: Persist, forget: Forget,
             clock: Callable[[], Awaitable[int]]) -> Channel:
        """This node's channel of the session, made on first use."""
        found = self._channels.get(session_id)
        if found is None or found.ended:
            for other, channel in list(self._channels.items()):  # ended ones go
                if channel.ended and not channel.people:
                    del self._channels[other]
            found = self._channels[session_id] = Channel(
                RoomState(self.redis, session_id), self.node_id, persist, forget, clock)
        return found

    def find(self, session_id: str) -> Channel | None:
        return self._channels.get(session_id)

    async def lost(self, node_id: str) -> None:
        """Another node stopped beating: the people it had leave every room (any node may
        do this; doing it twice changes nothing), and their raised hands go down."""
        key = node_sessions_key(node_id)
        for raw in await self.redis.smembers(key):
            state = RoomState(self.redis, raw.decode() if isinstance(raw, bytes) else str(raw))
            if await state.clear_node(node_id):
                here = await state.present_users()
                for hand in await state.hands():
                    if hand["user_id"] not in here:
                        await state.hand(hand["user_id"], None, quiet=True)
        await self.redis.delete(key)

    async def rejoined(self) -> None:
        """The others took this node for lost: its people are announced again."""
        for channel in list(self._channels.values()):
            await channel.announce()

    async def close(self) -> None:
        """Shutting down: this node's people leave their rooms (the sessions go on)."""
        for channel in list(self._channels.values()):
            with contextlib.suppress(Exception):
                await channel.close()
        self._channels.clear()
