"""The room channel: one WebSocket per person in a live room, carrying chat, reactions,
presence, the viewer count and the stage (hands, invites, the guest).

People of one session may be connected to different nodes. What they say and what the room
knows lives in Redis (`roomstate.RoomState`: a stream per session, state beside it); each
node runs one reader per session that delivers the stream, in order, to its own sockets.
A rule that depends on state (a mute, a rate limit) is checked in Redis when the message
arrives, so a change made through one node holds on every node at once. One node is a
cluster of one. Rules live here and in `domain/live.py`; the socket route only reads and
writes JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from service import i18n
from service.live.roomstate import RoomState

log = logging.getLogger("kumpul.live")

MAX_CHAT = 500
CHAT_RATE = (5, 10.0)       # messages per seconds, per person (on every node together)
REACTION_RATE = (10, 5.0)
REACTIONS = ("❤️", "🔥", "👏", "😂", "😮", "🎉")
OUTBOX = 2000      # messages waiting for one socket; a socket further behind is closed
READ_BLOCK_MS = 5000
READ_COUNT = 500
IDLE_SECONDS = 300.0  # a node with nobody in a room stops reading its stream after this
SendText = Callable[[str], Awaitable[None]]
Persist = Callable[[str, int, str, int], Awaitable[int]]  # kind, user, body, at_ms -> id
Forget = Callable[[int, int], Awaitable[None]]  # a deleted message's id, who deleted it


class ChannelError(Exception):
    def __init__(self, code: str, message: str, **params: object) -> None:
        """`message` is an English msgid, told to the person in their language."""
        super().__init__(i18n.ENGLISH.text(message, params))
        self.code = code
        self.message = message
        self.params = params


@dataclass(eq=False)
class Person:
    """One socket of one person, on this node. Messages to it queue in its outbox and one
    writer sends them, so a slow socket holds up nobody else."""

    user_id: int
    name: str
    can_moderate: bool
    is_host: bool
    send: SendText               # one JSON text to the socket
    speech: i18n.Speech = i18n.ENGLISH
    close: Callable[[int], Awaitable[None]] | None = None  # close the socket with a code
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    writer: asyncio.Task[None] | None = None
    closing: asyncio.Future[None] | None = None

    def put(self, text: str) -> None:
        if self.outbox.qsize() >= OUTBOX:
            if self.writer is not None and not self.writer.done():
                log.warning("room socket too far behind; closing it",
                            extra={"user": self.user_id})
                self.writer.cancel()
                if self.close is not None:
                    self.closing = asyncio.ensure_future(self.close(1013))
            return
        self.outbox.put_nowait(text)

    async def write(self) -> None:
        with contextlib.suppress(Exception):  # a closing socket: its own loop removes it
            while True:
                await self.send(await self.outbox.get())


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def refuse(person: Person, error: ChannelError) -> None:
    """Tell the person why, in their words."""
    person.put(encode({"type": "error", "code": error.code,
                       "message": person.speech.text(error.message, error.params)}))


def clean_chat(text: object) -> str:
    if not isinstance(text, str):
        raise ChannelError("invalid_message", "A chat message is text.")
    text = "".join(c for c in unicodedata.normalize("NFC", text)  # no controls, no lone
                   if c == "\n" or unicodedata.category(c) not in ("Cc", "Cs")).strip()
    if not text:
        raise ChannelError("empty_message", "Write something first.")
    if len(text) > MAX_CHAT:
        raise ChannelError("message_too_long", "Messages are at most %(limit)s characters.",
                           limit=MAX_CHAT)
    return text


class Channel:
    """One live session's room as seen from this node: the people connected here, and the
    reader that brings them the room's stream."""

    def __init__(self, shared: RoomState, node_id: str, persist: Persist, forget: Forget,
                 clock: Callable[[], Awaitable[int]]) -> None:
        self.shared = shared  # the room in Redis, as every node sees it
        self.node_id = node_id
        self.people: dict[int, Person] = {}  # by connection id (on this node)
        self.invites: dict[str, int] = {}    # stage token -> user id, as the stream told
        self._persist = persist
        self._forget = forget
        self._clock = clock  # ms on the recording's timeline
        self._next = 0
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._last = "0-0"
        self._empty_since: float | None = time.monotonic()
        self.ended = False     # the session ended (the stream said so)
        self.closing = False   # this node is shutting down
        self.on_remove_guest: Callable[[], Awaitable[None]] | None = None

    # --- presence ------------------------------------------------------------------------

    async def join(self, person: Person) -> int:
        """The person is told the room's state, then gets the stream from there on."""
        await self._reading()
        muted, hands, guest = await asyncio.gather(
            self.shared.muted(person.user_id), self.shared.hands(), self.shared.guest())
        self._next += 1
        conn = self._next
        person.writer = asyncio.create_task(person.write())
        person.put(encode({"type": "hello", "you": person.user_id, "host": person.is_host,
                           "moderator": person.can_moderate, "muted": muted, "hands": hands,
                           "guest": guest, "reactions": list(REACTIONS)}))
        self.people[conn] = person  # from here on the stream reaches it too
        self._empty_since = None
        try:
            await self.shared.present(self.node_id, conn, person.user_id, person.name)
        except BaseException:
            await self.leave(conn)
            raise
        return conn

    async def leave(self, conn: int) -> None:
        person = self.people.pop(conn, None)
        if person is None:
            return
        if person.writer is not None:
            person.writer.cancel()
        if not self.people:
            self._empty_since = time.monotonic()
        with contextlib.suppress(Exception):  # Redis away: the node's loss clears it later
            await self.shared.hand(person.user_id, None, quiet=True)
            await self.shared.absent(self.node_id, conn)

    async def announce(self) -> None:
        """Everyone connected here is present again (after the others took this node for
        lost and cleared its people)."""
        for conn, person in list(self.people.items()):
            await self.shared.present(self.node_id, conn, person.user_id, person.name)

    # --- the stream ---------------------------------------------------------------------

    async def _reading(self) -> None:
        async with self._starting:  # two people arriving at once start one reader
            if self._reader is None or self._reader.done():
                self._last = await self.shared.last_id()  # before the newcomer's snapshot
                self.invites = await self.shared.invites()
                self._reader = asyncio.create_task(self._read(),
                                                   name=f"room-{self.shared.session_id}")

    async def _read(self) -> None:
        while not (self.ended or self.closing):
            if not self.people and self._empty_since is not None \
                    and time.monotonic() - self._empty_since > IDLE_SECONDS:
                return
            try:
                entries = await self.shared.read(self._last, READ_BLOCK_MS, READ_COUNT)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("reading the room stream failed", exc_info=True,
                            extra={"session": self.shared.session_id})
                await asyncio.sleep(0.5)
                continue
            for entry_id, fields in entries:
                self._last = entry_id
                await self._deliver(fields)

    async def _deliver(self, fields: dict[str, str]) -> None:
        op = fields.get("op")
        if op == "invite":
            self.invites[fields["token"]] = int(fields["to"])
        elif op == "ended":
            self.ended = True
        elif op == "remove_guest":
            self.invites.clear()
            if self.on_remove_guest is not None:
                try:
                    await self.on_remove_guest()
                except Exception:
                    log.exception("letting the guest go failed")
        text = fields.get("m")
        if text is None:
            return
        to = int(fields["to"]) if "to" in fields else None
        for person in list(self.people.values()):
            if to is None or person.user_id == to:
                person.put(text)

    async def broadcast(self, message: dict[str, Any]) -> None:
        """To everyone in the room, on every node. The room's own news (viewers, the
        publisher) is told on a best-effort basis: with Redis away it is logged and lost."""
        try:
            if message.get("type") == "ended":
                if self.closing:  # this node shutting down ends nobody's session
                    return
                await self.shared.append(message, op="ended")
                await self.shared.ended()
            else:
                await self.shared.append(message)
        except (RedisError, OSError):
            log.warning("the room could not be told", exc_info=True,
                        extra={"session": self.shared.session_id, "type": message.get("type")})

    async def close(self) -> None:
        """This node lets go of the room (shutting down)."""
        self.closing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader, 2)
        for conn in list(self.people):
            await self.leave(conn)

    # --- messages -----------------------------------------------------------------------

    async def handle(self, conn: int, message: dict[str, Any]) -> None:
        person = self.people[conn]
        kind = message.get("type")
        try:
            if kind == "chat":
                await self._chat(person, message.get("text"))
            elif kind == "reaction":
                await self._react(person, message.get("emoji"))
            elif kind == "hand":
                await self.shared.hand(person.user_id,
                                      person.name if bool(message.get("up", True)) else None)
            elif kind in ("delete", "mute", "unmute", "invite", "remove_guest"):
                await self._moderate(person, kind, message)
            else:
                raise ChannelError("unknown_type", "Unknown message type '%(kind)s'.",
                                   kind=str(kind))
        except (RedisError, OSError):
            log.warning("room message not handled", exc_info=True)
            refuse(person, ChannelError("unavailable", "The room can't be reached right now. "
                                                       "Try again in a moment."))
        except ChannelError as exc:
            refuse(person, exc)

    async def _gate(self, person: Person, what: str, rate: tuple[int, float]) -> None:
        """Muted (as Redis says now, whichever node muted them) or over the person's rate
        (counted on every node together): refused."""
        verdict = await self.shared.gate(person.user_id, what, rate)
        if verdict == "muted":
            raise ChannelError("muted", "A moderator muted you in this session.")
        if verdict == "rate":
            count, seconds = rate
            raise ChannelError("rate_limited",
                               "Slow down: at most %(count)s per %(window_seconds)s.",
                               count=count, window_seconds=seconds)

    async def _chat(self, person: Person, raw: object) -> None:
        text = clean_chat(raw)
        await self._gate(person, "chat", CHAT_RATE)
        at = await self._clock()
        event_id = await self._persist("chat", person.user_id, text, at)
        await self.shared.append({"type": "chat", "id": event_id, "user_id": person.user_id,
                                 "name": person.name, "text": text, "at_ms": at,
                                 "at": int(time.time() * 1000)})  # wall clock, for people

    async def _react(self, person: Person, emoji: object) -> None:
        if emoji not in REACTIONS:
            raise ChannelError("invalid_reaction", "Pick one of the room's reactions.")
        await self._gate(person, "reaction", REACTION_RATE)
        at = await self._clock()
        await self._persist("reaction", person.user_id, str(emoji), at)
        await self.shared.append({"type": "reaction", "emoji": emoji, "user_id": person.user_id,
                                 "at_ms": at})

    async def _moderate(self, person: Person, kind: str, message: dict[str, Any]) -> None:
        stage = kind in ("invite", "remove_guest")
        if not (person.is_host if stage else person.can_moderate):
            raise ChannelError("not_allowed", "Only the host or a moderator can do that.")
        target = message.get("user_id")
        if kind == "delete":
            event_id = message.get("id")
            if not isinstance(event_id, int):
                raise ChannelError("invalid_message", "Name the message (id).")
            await self._forget(event_id, person.user_id)
            await self.shared.append({"type": "deleted", "id": event_id})
        elif kind in ("mute", "unmute") and isinstance(target, int):
            await self.shared.mute(target, kind == "mute")
            await self.shared.append({"type": kind + "d", "user_id": target})
        elif kind == "invite" and isinstance(target, int):
            await self.invite(target)
        elif kind == "remove_guest":
            await self.remove_guest()
        else:
            raise ChannelError("invalid_message", "Name the member (user_id).")

    # --- stage --------------------------------------------------------------------------

    async def invite(self, user_id: int) -> None:
        """A stage token goes to the invited member's sockets only (on whatever node)."""
        if not await self.shared.is_here(user_id):
            raise ChannelError("not_here", "That member isn't in the room.")
        token = "kstage_" + secrets.token_urlsafe(24)
        self.invites[token] = user_id
        await self.shared.add_invite(token, user_id)
        await self.shared.append({"type": "invite", "stage_token": token}, to=user_id,
                                op="invite", token=token)
        await self.shared.hand(user_id, None)

    def stage_user(self, token: str | None) -> int | None:
        return self.invites.get(token or "")

    async def on_stage(self, user_id: int | None) -> None:
        await self.shared.set_guest(user_id)
        await self.shared.append({"type": "stage", "guest": user_id})

    async def remove_guest(self) -> None:
        """The invites stop working on every node, and the node holding the guest's
        publisher lets it go (each node's reader runs `on_remove_guest`)."""
        self.invites.clear()
        await self.shared.clear_invites()
        await self.shared.append(None, op="remove_guest")
        await self.on_stage(None)
