"""The room channel: one WebSocket per person in a live room, carrying chat, reactions,
presence, the viewer count and the stage (hands, invites, the guest).

Rules live here and in `domain/live.py`; the socket route only reads and writes JSON.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service import i18n

MAX_CHAT = 500
CHAT_RATE = (5, 10.0)       # messages per seconds
REACTION_RATE = (10, 5.0)
REACTIONS = ("❤️", "🔥", "👏", "😂", "😮", "🎉")
Send = Callable[[dict[str, Any]], Awaitable[None]]
Persist = Callable[[str, int, str, int], Awaitable[int]]  # kind, user, body, at_ms -> id
Forget = Callable[[int, int], Awaitable[None]]  # a deleted message's id, who deleted it


class ChannelError(Exception):
    def __init__(self, code: str, message: str, **params: object) -> None:
        """`message` is an English msgid, told to the person in their language."""
        super().__init__(i18n.ENGLISH.text(message, params))
        self.code = code
        self.message = message
        self.params = params


@dataclass
class Person:
    user_id: int
    name: str
    can_moderate: bool
    is_host: bool
    send: Send
    sent: dict[str, deque[float]] = field(default_factory=dict)
    speech: i18n.Speech = i18n.ENGLISH


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
    """Everyone connected to one live session in this process."""

    def __init__(self, persist: Persist, forget: Forget, clock: Callable[[], int]) -> None:
        self.people: dict[int, Person] = {}  # by connection id
        self.muted: set[int] = set()
        self.hands: dict[int, str] = {}
        self.invites: dict[str, int] = {}    # stage token -> user id
        self.guest: int | None = None
        self._persist = persist
        self._forget = forget
        self._clock = clock  # ms on the recording's timeline
        self._next = 0
        self.on_remove_guest: Callable[[], Awaitable[None]] | None = None

    # --- presence ------------------------------------------------------------------------

    async def join(self, person: Person) -> int:
        self._next += 1
        self.people[self._next] = person
        await person.send({"type": "hello", "you": person.user_id,
                           "host": person.is_host, "moderator": person.can_moderate,
                           "muted": person.user_id in self.muted, "hands": self._hands(),
                           "guest": self.guest, "reactions": list(REACTIONS)})
        await self._presence()
        return self._next

    async def leave(self, conn: int) -> None:
        person = self.people.pop(conn, None)
        if person is not None:
            self.hands.pop(person.user_id, None)
            await self._presence()

    async def _presence(self) -> None:
        names = sorted({p.name for p in self.people.values()})
        await self.broadcast({"type": "presence", "count": len({p.user_id for p in
                                                                 self.people.values()}),
                              "people": names[:50]})

    def _hands(self) -> list[dict[str, Any]]:
        return [{"user_id": u, "name": n} for u, n in self.hands.items()]

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
                await self._hand(person, bool(message.get("up", True)))
            elif kind in ("delete", "mute", "unmute", "invite", "remove_guest"):
                await self._moderate(person, kind, message)
            else:
                raise ChannelError("unknown_type", "Unknown message type '%(kind)s'.",
                                   kind=str(kind))
        except ChannelError as exc:
            await person.send({"type": "error", "code": exc.code,
                               "message": person.speech.text(exc.message, exc.params)})

    def _limit(self, person: Person, what: str, rate: tuple[int, float]) -> None:
        count, seconds = rate
        window = person.sent.setdefault(what, deque())
        now = time.monotonic()
        while window and now - window[0] > seconds:
            window.popleft()
        if len(window) >= count:
            raise ChannelError("rate_limited",
                               "Slow down: at most %(count)s per %(window_seconds)s.",
                               count=count, window_seconds=seconds)
        window.append(now)

    async def _chat(self, person: Person, raw: object) -> None:
        if person.user_id in self.muted:
            raise ChannelError("muted", "A moderator muted you in this session.")
        text = clean_chat(raw)
        self._limit(person, "chat", CHAT_RATE)
        at = self._clock()
        event_id = await self._persist("chat", person.user_id, text, at)
        await self.broadcast({"type": "chat", "id": event_id, "user_id": person.user_id,
                              "name": person.name, "text": text, "at_ms": at,
                              "at": int(time.time() * 1000)})  # wall clock, for people

    async def _react(self, person: Person, emoji: object) -> None:
        if emoji not in REACTIONS:
            raise ChannelError("invalid_reaction", "Pick one of the room's reactions.")
        if person.user_id in self.muted:
            raise ChannelError("muted", "A moderator muted you in this session.")
        self._limit(person, "reaction", REACTION_RATE)
        at = self._clock()
        await self._persist("reaction", person.user_id, str(emoji), at)
        await self.broadcast({"type": "reaction", "emoji": emoji, "user_id": person.user_id,
                              "at_ms": at})

    async def _hand(self, person: Person, up: bool) -> None:
        if up:
            self.hands[person.user_id] = person.name
        else:
            self.hands.pop(person.user_id, None)
        await self.broadcast({"type": "hands", "hands": self._hands()})

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
            await self.broadcast({"type": "deleted", "id": event_id})
        elif kind in ("mute", "unmute") and isinstance(target, int):
            (self.muted.add if kind == "mute" else self.muted.discard)(target)
            await self.broadcast({"type": kind + "d", "user_id": target})
        elif kind == "invite" and isinstance(target, int):
            await self.invite(target)
        elif kind == "remove_guest":
            await self.remove_guest()
        else:
            raise ChannelError("invalid_message", "Name the member (user_id).")

    # --- stage --------------------------------------------------------------------------

    async def invite(self, user_id: int) -> None:
        """A stage token goes to the invited member's sockets only."""
        invited = [p for p in self.people.values() if p.user_id == user_id]
        if not invited:
            raise ChannelError("not_here", "That member isn't in the room.")
        token = "kstage_" + secrets.token_urlsafe(24)
        self.invites[token] = user_id
        for person in invited:
            await person.send({"type": "invite", "stage_token": token})
        self.hands.pop(user_id, None)
        await self.broadcast({"type": "hands", "hands": self._hands()})

    def stage_user(self, token: str | None) -> int | None:
        return self.invites.get(token or "")

    async def on_stage(self, user_id: int | None) -> None:
        self.guest = user_id
        await self.broadcast({"type": "stage", "guest": user_id})

    async def remove_guest(self) -> None:
        self.invites.clear()
        if self.on_remove_guest is not None:
            await self.on_remove_guest()
        await self.on_stage(None)

    async def broadcast(self, message: dict[str, Any]) -> None:
        for person in list(self.people.values()):
            with contextlib.suppress(Exception):  # a closing socket: its own loop removes it
                await person.send(message)
