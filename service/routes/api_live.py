"""API: live sessions (schedule, list, end) and their standard signalling, WHIP (RFC 9725)
for the publisher and WHEP for viewers."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.cluster import auth, proxy
from service.db.models import LiveSession
from service.domain import live
from service.domain.live_state import LiveState
from service.domain.roles import Permission
from service.errors import (
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)
from service.live import recordings, turn
from service.live.quality import Layer
from service.routes.links import links
from service.routes.live_nodes import forward, from_node, resource_node
from service.settings import Settings
from service.web import Services, bearer, json_body, member_access, page_of, require_user, services


def session_view(svc: Services, row: LiveSession, viewers: int | None = None,
                 state: dict[str, str] | None = None) -> dict[str, object]:
    """The session as the API shows it; `viewers` and `state` over every node (Redis),
    else this node's room."""
    room = svc.rooms.find(row.id)
    base = svc.settings.public_url.rstrip("/")
    if state:
        publishing = state.get("publishing") == "1"
        codecs: dict[str, Any] = {"video_codec": state.get("video_codec") or None,
                                  "audio_codec": state.get("audio_codec") or None}
    else:
        publishing = bool(room and room.publishing)
        codecs = room.codecs() if room else {"video_codec": None, "audio_codec": None}
    if viewers is None:
        viewers = len(room.viewers) if room else 0
    return {"id": row.id, "title": row.title, "description": row.description,
            "state": row.state, "starts_at": row.starts_at.isoformat(),
            "started_at": row.started_at.isoformat() if row.started_at else None,
            "ended_at": row.ended_at.isoformat() if row.ended_at else None,
            "host_id": row.host_id, "viewers": viewers, "publishing": publishing,
            **codecs, "recording": row.recording_state,
            "whip_url": f"{base}/api/live/{row.id}/whip",
            "whep_url": f"{base}/api/live/{row.id}/whep"}


async def session_views(svc: Services, rows: list[LiveSession]) -> list[dict[str, object]]:
    """Sessions with their viewers and state over every node."""
    live_ids = [r.id for r in rows if r.state == LiveState.live]
    try:
        totals = await svc.spread.placement.totals(live_ids)
        states = await svc.spread.placement.states(live_ids)
    except RedisError:  # this node's rooms only
        totals, states = {}, {}
    return [session_view(svc, r, totals.get(r.id), states.get(r.id)) for r in rows]


async def _at_origin(request: Request, svc: Services, session_id: str) -> Response | None:
    """The room's origin's answer when another live node holds the room (None: serve
    here)."""
    if await from_node(request, svc):
        return None
    origin = await svc.spread.origin(session_id)
    if origin is None or origin.id == svc.spread.node_id:
        return None
    try:
        return await forward(request, svc, origin)
    except proxy.Unreachable:  # gone between two beats: its claim goes with it
        await svc.spread.forget(origin.id)
        return None


def ice_links(settings: Settings, who: str) -> dict[str, str]:
    """The STUN/TURN servers as WHIP/WHEP `Link` headers (RFC 9725 section 4.6), with a
    TURN credential of `who`'s own."""
    return turn.link_headers(turn.servers_for(settings, who))


async def _sdp(request: Request) -> str:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/sdp":
        raise UnsupportedMediaType("Send the offer as application/sdp.", code="sdp_required")
    body = await request.body()
    if len(body) > 64 * 1024:
        raise PayloadTooLarge("That SDP offer is too large.", code="sdp_too_large")
    return body.decode("utf-8", errors="replace")


def _answer(svc: Services, sdp: str, location: str, who: str) -> Response:
    return Response(sdp, status_code=201, media_type="application/sdp",
                    headers={"Location": location, **ice_links(svc.settings, who)})


async def sessions_list(request: Request) -> Response:
    """
    summary: Upcoming and live sessions of a community.
    tags: [live]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Sessions, content: {application/json: {schema: {$ref: '#/components/schemas/LiveSessions'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view)
        rows = await live.of_community(session, access)
    rows, next_offset = page.slice(rows)
    return JSONResponse({"sessions": await session_views(svc, rows),
                         "next_offset": next_offset})


async def session_get(request: Request) -> Response:
    """
    summary: One session of a community, with its replay's links once the recording is ready.
    tags: [live]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: session_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The session, content: {application/json: {schema: {$ref: '#/components/schemas/LiveSession'}}}}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view)
        row = await live.get(session, access, request.path_params["session_id"])
    return JSONResponse({**session_view(svc, row), "replay": links(svc).replay(row)})


async def sessions_create(request: Request) -> Response:
    """
    summary: Schedule a live session (hosts). The publish token (stream key) is shown once.
    tags: [live]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/NewLiveSession'}
    responses:
      201: {description: Scheduled, content: {application/json: {schema: {$ref: '#/components/schemas/LiveSession'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.host_sessions)
        body = await json_body(request)
        row, token = await live.schedule(session, access, title=body.get("title"),
                                         description=body.get("description", ""),
                                         starts_at=body.get("starts_at"))
    return JSONResponse({**(await session_views(svc, [row]))[0], "publish_token": token},
                        status_code=201)


async def session_end(request: Request) -> Response:
    """
    summary: End a live session (or call off a scheduled one); everyone is disconnected.
    tags: [live]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: session_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Ended, content: {application/json: {schema: {$ref: '#/components/schemas/LiveSession'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    elsewhere = await _at_origin(request, svc, request.path_params["session_id"])
    if elsewhere is not None:  # the room, its recorder and its edges' relays are there
        return elsewhere
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.host_sessions)
        row = await live.get(session, access, request.path_params["session_id"])
        await live.end(session, row, access.user.id)
    made = await svc.rooms.end(row.id)
    await recordings.store(svc.store, svc.transaction, row.id, made)
    async with svc.db() as session:
        row = await live.get(session, access, row.id)
    return JSONResponse((await session_views(svc, [row]))[0])


async def session_token(request: Request) -> Response:
    """
    summary: A new publish token (stream key) for WHIP encoders such as OBS; the old one stops working, and an encoder publishing with it is stopped at once.
    tags: [live]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: session_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The token, content: {application/json: {schema: {$ref: '#/components/schemas/LiveSession'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    elsewhere = await _at_origin(request, svc, request.path_params["session_id"])
    if elsewhere is not None:  # an encoder with the old key publishes there
        return elsewhere
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.host_sessions)
        row = await live.get(session, access, request.path_params["session_id"])
        if row.host_id != access.user.id:
            raise Forbidden("Only the session's host gets its stream key.", code="not_the_host")
        token = await live.new_publish_token(session, access, row)
    room = svc.rooms.find(row.id)
    if room is not None:  # the encoder with the old key stops now
        await room.stop_keyed_publisher()
    return JSONResponse({**(await session_views(svc, [row]))[0], "publish_token": token})


async def whip_publish(request: Request) -> Response:
    """
    summary: WHIP (RFC 9725) publish. The body is an SDP offer; Bearer is the publish token (or a stage token; the studio page uses the host's session).
    tags: [live]
    parameters:
      - {name: session_id, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/sdp:
          schema: {type: string}
    responses:
      201: {description: The SDP answer; Location names the resource, content: {application/sdp: {schema: {type: string}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      410: {$ref: '#/components/responses/Error'}
      413: {$ref: '#/components/responses/Error'}
      415: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    session_id = request.path_params["session_id"]
    elsewhere = await _at_origin(request, svc, session_id)
    if elsewhere is not None:  # a second WHIP through another node meets the first there
        return elsewhere
    token = bearer(request)
    slot, guest = (await _publisher(svc, session_id, token) if token
                   else await _studio(request, svc, session_id))
    offer = await _sdp(request)
    if await svc.spread.claim(session_id) != svc.spread.node_id:  # another node won it
        elsewhere = await _at_origin(request, svc, session_id)
        if elsewhere is not None:
            return elsewhere
        raise Conflict("Someone is already publishing to this session.",
                       code="already_publishing",
                       hint="Stop the other stream (or DELETE its resource) first.")
    room = svc.rooms.get(session_id)
    answer, resource = await room.publish(offer, slot, by_key=slot == "host" and bool(token))
    if slot == "host":
        async with svc.transaction() as session:
            await live.go_live(session, session_id)
    elif room.channel is not None:
        await room.channel.on_stage(guest)
    return _answer(svc, answer, f"/api/live/{session_id}/whip/{resource}",
                   f"live-{session_id}-{slot}")


async def _studio(request: Request, svc: Services, session_id: str) -> tuple[str, None]:
    """The built-in studio page publishes with the host's own signed-in session (someone
    outside the community learns nothing of the session: 404)."""
    row, user_id = await _member_session(request, svc, session_id)
    if row.host_id != user_id:
        raise Forbidden("Only the session's host publishes from the studio.",
                        code="not_the_host")
    if row.state == LiveState.ended:
        raise Gone("This session has ended.", code="session_ended")
    return "host", None


async def _publisher(svc: Services, session_id: str, token: str | None) -> tuple[str, int | None]:
    """Which slot a WHIP token opens: the host's publish token, or a stage invite (a member
    the host invited, while the session is live)."""
    try:
        async with svc.db() as session:
            await live.by_publish_token(session, session_id, token)
        return "host", None
    except Unauthorized:
        room = svc.rooms.find(session_id)
        guest = room.channel.stage_user(token) if room and room.channel else None
        if guest is None or room is None or not room.publishing:
            raise
        return "guest", guest


async def whip_stop(request: Request) -> Response:
    """
    summary: WHIP resource delete - stop publishing (the session stays live until ended).
    tags: [live]
    parameters:
      - {name: session_id, in: path, required: true, schema: {type: string}}
      - {name: resource, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Stopped}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      410: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    session_id = request.path_params["session_id"]
    elsewhere = await _at_resource(request, svc)
    if elsewhere is not None:
        return elsewhere
    await _publisher(svc, session_id, bearer(request))
    room = svc.rooms.find(session_id)
    resource = request.path_params["resource"]
    slot = room.publisher_slot(resource) if room else None
    if room is None or slot is None or not await room.stop_publisher(slot, resource):
        raise NotFound("No such publishing resource.", code="resource_not_found")
    if slot == "guest" and room.channel is not None:
        await room.channel.on_stage(None)
    return Response(status_code=200)


async def whep_view(request: Request) -> Response:
    """
    summary: WHEP playback. The body is an SDP offer; members sign in with their session or a personal token.
    tags: [live]
    parameters:
      - {name: session_id, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/sdp:
          schema: {type: string}
    responses:
      201: {description: The SDP answer; Location names the resource, content: {application/sdp: {schema: {type: string}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      410: {$ref: '#/components/responses/Error'}
      413: {$ref: '#/components/responses/Error'}
      415: {$ref: '#/components/responses/Error'}
      503: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    session_id = request.path_params["session_id"]
    row, user_id = await _member_session(request, svc, session_id)
    if row.state == LiveState.ended:
        raise Gone("This session has ended.", code="session_ended")
    offer = await _sdp(request)
    routed = await from_node(request, svc)
    if not routed:
        target = await svc.spread.choose_viewer_node(session_id)
        if target is not None and target.id != svc.spread.node_id:
            try:
                return await forward(request, svc, target)
            except proxy.Unreachable:  # gone between two beats: serve here instead
                await svc.spread.forget(target.id)
    origin = await svc.spread.origin(session_id)
    room = (svc.rooms.get(session_id) if origin is None or origin.id == svc.spread.node_id
            else await svc.spread.edge(session_id))
    answer, resource = await room.view(offer)
    return _answer(svc, answer, f"/api/live/{session_id}/whep/{resource}", f"user-{user_id}")


async def whep_stop(request: Request) -> Response:
    """
    summary: WHEP resource delete - leave the session.
    tags: [live]
    parameters:
      - {name: session_id, in: path, required: true, schema: {type: string}}
      - {name: resource, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Left}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    session_id = request.path_params["session_id"]
    elsewhere = await _at_resource(request, svc)
    if elsewhere is not None:
        return elsewhere
    await _member_session(request, svc, session_id)
    room = svc.rooms.find(session_id)
    if room is None or not await room.stop_viewer(request.path_params["resource"]):
        raise NotFound("No such viewing resource.", code="resource_not_found")
    return Response(status_code=200)


async def whep_quality(request: Request) -> Response:
    """
    summary: A viewer's quality - the layer it gets now (high, low, audio) and the most it wants. POST {"ceiling"} chooses (high = automatic, low = save data, audio = sound only).
    tags: [live]
    parameters:
      - {name: session_id, in: path, required: true, schema: {type: string}}
      - {name: resource, in: path, required: true, schema: {type: string}}
    requestBody:
      required: false
      content:
        application/json:
          schema: {$ref: '#/components/schemas/ViewerQualityChoice'}
    responses:
      200: {description: The quality, content: {application/json: {schema: {$ref: '#/components/schemas/ViewerQuality'}}}}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    session_id = request.path_params["session_id"]
    elsewhere = await _at_resource(request, svc)
    if elsewhere is not None:
        return elsewhere
    await _member_session(request, svc, session_id)
    room = svc.rooms.find(session_id)
    resource = request.path_params["resource"]
    found = room.quality(resource) if room else None
    if room is None or found is None:
        raise NotFound("No such viewing resource.", code="resource_not_found")
    if request.method == "POST":
        body = await json_body(request)
        try:
            ceiling = Layer(str(body.get("ceiling")))
        except ValueError:
            raise Unprocessable("Choose high, low or audio.", code="invalid_quality") from None
        found = room.choose_quality(resource, ceiling)
    return JSONResponse(found)


async def _at_resource(request: Request, svc: Services) -> Response | None:
    """The answer of the node a resource id names, when that is another live node."""
    node = await resource_node(request, svc)
    if node is None:
        return None
    try:
        return await forward(request, svc, node)
    except proxy.Unreachable:  # that node is gone, and its resource with it: 404 here
        return None


async def relay_socket(ws: WebSocket) -> None:
    """An edge node reads a room's frames from its origin (`live/relay.py`); nodes only."""
    svc = services(ws)
    if not auth.verify(svc.settings.secret_key, "GET", ws.url.path, b"",
                       ws.headers.get(auth.HEADER)):
        await ws.close(code=4401)
        return
    room = svc.rooms.find(ws.path_params["session_id"])
    if room is None or not room.origin:
        await ws.close(code=4404)
        return
    await ws.accept()
    out = room.relay()

    async def receive() -> str | None:
        try:
            return await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return None

    try:
        await out.run(ws.send_bytes, receive)
    finally:
        room.relays.discard(out)
        with contextlib.suppress(Exception):
            await ws.close()


async def _member_session(request: Request, svc: Services,
                          session_id: str) -> tuple[LiveSession, int]:
    """The session, if the signed-in user is in its community; and who they are."""
    async with svc.db() as session:
        who = await require_user(request, session)
        row, _ = await live.visible(session, who.user, session_id)
    return row, who.user.id


def _options(allow: str, **extra: str) -> Callable[[Request], Awaitable[Response]]:
    async def options(request: Request) -> Response:
        """What the resource takes (RFC 9725 section 4.3: WHIP/WHEP answer OPTIONS; a
        preflight from a `KUMPUL_CORS_ORIGINS` site is answered by `service.cors`)."""
        return Response(status_code=204, headers={"Allow": allow, **extra})

    return options


whip_options = _options("OPTIONS, POST", **{"Accept-Post": "application/sdp"})
whep_options = whip_options
resource_options = _options("OPTIONS, DELETE")

routes = [
    Route("/api/communities/{slug}/live", sessions_list, methods=["GET"]),
    Route("/api/communities/{slug}/live", sessions_create, methods=["POST"]),
    Route("/api/communities/{slug}/live/{session_id}", session_get, methods=["GET"]),
    Route("/api/communities/{slug}/live/{session_id}/end", session_end, methods=["POST"]),
    Route("/api/communities/{slug}/live/{session_id}/token", session_token, methods=["POST"]),
    Route("/api/live/{session_id}/whip", whip_publish, methods=["POST"]),
    Route("/api/live/{session_id}/whip/{resource}", whip_stop, methods=["DELETE"]),
    Route("/api/live/{session_id}/whep", whep_view, methods=["POST"]),
    Route("/api/live/{session_id}/whep/{resource}", whep_stop, methods=["DELETE"]),
    Route("/api/live/{session_id}/whep/{resource}/quality", whep_quality,
          methods=["GET", "POST"]),
    WebSocketRoute("/api/live/{session_id}/relay", relay_socket),
    Route("/api/live/{session_id}/whip", whip_options, methods=["OPTIONS"],
          include_in_schema=False),
    Route("/api/live/{session_id}/whep", whep_options, methods=["OPTIONS"],
          include_in_schema=False),
    Route("/api/live/{session_id}/whip/{resource}", resource_options, methods=["OPTIONS"],
          include_in_schema=False),
    Route("/api/live/{session_id}/whep/{resource}", resource_options, methods=["OPTIONS"],
          include_in_schema=False),
]
