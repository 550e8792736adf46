"""The room channel's WebSocket: `/api/live/{session_id}/room`. Signed-in members of the
session's community only, from this site's own pages (the Origin is checked)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.db.models import LiveSession, User
from service.domain import accounts, live
from service.domain.live_state import LiveState
from service.domain.roles import Permission, allows
from service.errors import ApiError
from service.live.channel import Channel, ChannelError, Person, refuse
from service.live.rooms import Room
from service.web import SESSION_COOKIE, Services, speech_for

MAX_MESSAGE = 4096  # bytes of one incoming message


def _services(ws: WebSocket) -> Services:
    found = ws.state.services
    assert isinstance(found, Services)
    return found


def _same_origin(ws: WebSocket, public_url: str) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser: cookies are not sent by other sites' pages anyway
        return True
    mine = urlsplit(public_url)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc) or \
        theirs.netloc == ws.headers.get("host")


async def _who(svc: Services, ws: WebSocket, session_id: str) -> tuple[
        User, LiveSession, str] | int:
    """The member and the session, or the close code of the refusal: 4401 not signed in,
    4404 no such session in the member's communities."""
    async with svc.db() as session:
        try:
            user, _ = await accounts.session_user(session, ws.cookies.get(SESSION_COOKIE, ""))
        except ApiError:
            return 4401
        try:
            row, access = await live.visible(session, user, session_id)
        except ApiError:
            return 4404
    speech_for(ws, user=user, community=access.community)  # told to this person in their words
    return user, row, access.role


def channel_of(svc: Services, room: Room) -> Channel:
    """The room's channel on this node (made on first use): the room's own events (viewers,
    publisher, stage) go through it to every node's sockets."""
    if room.channel is None or room.channel.ended:
        session_id = room.session_id

        async def persist(kind: str, user_id: int, body: str, at_ms: int) -> int:
            async with svc.transaction() as session:
                return await live.add_event(session, session_id, kind, user_id, body, at_ms)

        async def forget(event_id: int, actor_id: int) -> None:
            async with svc.transaction() as session:
                await live.delete_event(session, session_id, event_id, actor_id)

        recorder = room.recorder

        async def clock() -> int:
            """ms on the recording's timeline: this node's recorder's, or (an edge, or an
            origin that moved) the one the room's origin published."""
            if recorder is not None and recorder.started is not None:
                return recorder.elapsed_ms()
            return await svc.spread.recording_ms(session_id)

        room.channel = svc.channels.open(session_id, persist, forget, clock=clock)

        async def remove_guest() -> None:
            await room.stop_publisher("guest")

        room.channel.on_remove_guest = remove_guest
    return room.channel


async def room_socket(ws: WebSocket) -> None:
    svc = _services(ws)
    session_id = ws.path_params["session_id"]
    # refusals are sent as close codes after the handshake, so clients can tell them apart
    # (a refused handshake is only a bare HTTP 403)
    if not _same_origin(ws, svc.settings.public_url):
        await _refuse(ws, 4403, "cross-site connection")
        return
    found = await _who(svc, ws, session_id)
    if isinstance(found, int):
        await _refuse(ws, found, "sign in" if found == 4401 else "no such session here")
        return
    user, row, role = found
    if row.state == LiveState.ended:
        await _refuse(ws, 4410, "the session has ended")
        return
    await ws.accept()
    channel = channel_of(svc, svc.rooms.get(session_id))

    async def close(code: int) -> None:
        await ws.close(code=code)

    person = Person(user.id, user.display_name,
                    can_moderate=allows(role, Permission.moderate) or row.host_id == user.id,
                    is_host=row.host_id == user.id, send=ws.send_text, speech=ws.state.speech,
                    close=close)
    conn = await channel.join(person)
    try:
        while True:
            text = await ws.receive_text()
            if len(text.encode()) > MAX_MESSAGE:
                refuse(person, ChannelError("message_too_large",
                                            "Messages are at most %(limit)s bytes.",
                                            limit=MAX_MESSAGE))
                continue
            try:
                message = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                message = None
            if not isinstance(message, dict):
                refuse(person, ChannelError("invalid_json", "Send one JSON object per message."))
                continue
            await channel.handle(conn, message)
    except WebSocketDisconnect:
        pass
    finally:
        await channel.leave(conn)


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    await ws.accept()
    await ws.close(code=code, reason=reason)


routes = [WebSocketRoute("/api/live/{session_id}/room", room_socket)]
