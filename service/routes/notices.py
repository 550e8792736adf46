"""Notifications: the bell's list and its live count, mark read, each person's choices,
one-click unsubscribe (RFC 8058, no login), and the calendar (.ics per session, a feed per
member)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from service import i18n
from service.domain import calendar, live, notices, notifications
from service.domain.roles import Permission
from service.errors import BadRequest, NotFound
from service.events import notice_channel
from service.routes.pages import page, read_form, render
from service.web import (
    json_body,
    member_access,
    page_of,
    require_user,
    services,
    speech_for,
)

KEEPALIVE_SECONDS = 15.0
ICS = "text/calendar; charset=utf-8"


# --- the bell ---------------------------------------------------------------------------

@page
async def list_page(request: Request) -> Response:
    """Your notices, newest first."""
    svc = services(request)
    shown = page_of(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        rows, next_offset = shown.cut(await notifications.recent(session, who.user.id, shown))
    speech = i18n.current()
    return render(request, "notifications.html", {
        "notices": [{**notifications.shown(row, speech), "at": row.created_at} for row in rows],
        "next_offset": next_offset}, who=who)


@page
async def read_page(request: Request) -> Response:
    """Mark one notice (`id`) or all of them read, then follow its link or go back."""
    svc = services(request)
    form = await read_form(request)
    raw = str(form.get("id") or "")
    async with svc.transaction() as session:
        who = await require_user(request, session, form)
        ids = [int(raw)] if raw.isdigit() and len(raw) < 10 else None
        await notifications.mark_read(session, who.user.id, ids)
    target = str(form.get("next") or "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/notifications"
    return RedirectResponse(target, status_code=303)


async def api_list(request: Request) -> Response:
    """
    summary: Your notices, newest first, with the unread count.
    tags: [notifications]
    parameters:
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Notices, content: {application/json: {schema: {type: object, properties: {notifications: {type: array, items: {type: object}}, unread: {type: integer}, next_offset: {type: [integer, 'null']}}, required: [notifications, unread, next_offset]}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    shown = page_of(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        rows, next_offset = shown.cut(await notifications.recent(session, who.user.id, shown))
        unread = await notifications.unread(session, who.user.id)
    speech = i18n.current()
    return JSONResponse({"notifications": [notifications.shown(r, speech) for r in rows],
                         "unread": unread, "next_offset": next_offset})


async def api_read(request: Request) -> Response:
    """
    summary: Mark notices read (`ids`), or all of them when no ids are sent.
    tags: [notifications]
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, properties: {ids: {type: array, items: {type: integer}}}}
    responses:
      200: {description: What stays unread, content: {application/json: {schema: {type: object, properties: {unread: {type: integer}}, required: [unread]}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      415: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    body = await json_body(request)
    raw = body.get("ids")
    if raw is not None and (not isinstance(raw, list) or len(raw) > 200 or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in raw)):
        raise BadRequest("ids is a list of up to 200 notice ids.", code="invalid_ids")
    async with svc.transaction() as session:
        who = await require_user(request, session)
        left = await notifications.mark_read(session, who.user.id, raw)
    return JSONResponse({"unread": left})


async def api_events(request: Request) -> Response:
    """Server-sent events: the unread count now, then each new notice and count."""
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        unread = await notifications.unread(session, who.user.id)
    channel = notice_channel(who.user.id)
    speech = i18n.current()

    async def stream() -> AsyncIterator[str]:
        pubsub = svc.redis.pubsub()
        await pubsub.subscribe(channel)
        try:
            yield f"data: {json.dumps({'unread': unread})}\n\n"
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                   timeout=KEEPALIVE_SECONDS)
                if message is None:
                    yield ": keep-alive\n\n"
                elif message["type"] == "message":
                    event = json.loads(message["data"])
                    if "kind" in event:
                        event["text"] = notices.headline(speech, event["kind"],
                                                         event.pop("params", {}) or {})
                    yield f"data: {json.dumps(event, separators=(',', ':'))}\n\n"
        finally:
            with anyio.CancelScope(shield=True):
                await pubsub.unsubscribe(channel)
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# --- choices and one-click unsubscribe --------------------------------------------------

@page
async def choices_save(request: Request) -> Response:
    """The account page's choices: one field per kind (email, in_app, off)."""
    svc = services(request)
    form = await read_form(request)
    async with svc.transaction() as session:
        who = await require_user(request, session, form)
        for kind in notices.CHOOSABLE:
            if kind.name in form:
                await notifications.choose(session, who.user.id, kind.name, form[kind.name])
    return RedirectResponse("/account?saved=1#notifications", status_code=303)


async def unsubscribe(request: Request) -> Response:
    """GET: a page asking to confirm. POST (the mail client's one click, RFC 8058, or the
    page's button): unsubscribed from the token's kind, no login needed."""
    svc = services(request)
    found = notices.read_unsubscribe(svc.settings.secret_key, request.path_params["token"])
    if found is None:
        raise NotFound("This unsubscribe link is not valid.", code="unsubscribe_invalid")
    who, kind = found
    speech_for(request)
    label = i18n.current().gettext(notices.KINDS[kind].label)
    if request.method == "GET":
        return render(request, "unsubscribe.html", {"kind": label, "done": False})
    async with svc.transaction() as session:
        await notifications.unsubscribe(session, who, kind)
    return render(request, "unsubscribe.html", {"kind": label, "done": True})


# --- calendar ---------------------------------------------------------------------------

async def session_ics(request: Request) -> Response:
    """One session as an iCalendar file, in its community's time zone, with a reminder."""
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view)
        row = await live.get(session, access, request.path_params["session_id"])
    url = f"{svc.settings.public_url}/c/{access.community.slug}/live/{row.id}"
    body = calendar.document([calendar.Event(row, access.community, url)], i18n.current(),
                             _host(svc.settings.public_url))
    return Response(body, media_type=ICS, headers={
        "Content-Disposition": f'attachment; filename="kumpul-{row.id[:8]}.ics"'})


async def feed_ics(request: Request) -> Response:
    """A member's subscribable feed: the sessions of their communities. The token is the
    only key; a revoked or unknown one is 404."""
    svc = services(request)
    async with svc.db() as session:
        user = await calendar.feed_user(session, svc.settings.secret_key,
                                        request.path_params["token"])
        if user is None:
            raise NotFound("This calendar link is not valid.", code="calendar_not_found")
        rows = await calendar.upcoming(session, user)
    speech = i18n.Speech.of(user.language or (rows[0][1].language if rows else None),
                            user.time_zone)
    events = [calendar.Event(row, community, f"{svc.settings.public_url}/c/{community.slug}"
                             f"/live/{row.id}") for row, community in rows]
    body = calendar.document(events, speech, _host(svc.settings.public_url),
                             name=speech.gettext(calendar.FEED_NAME))
    return Response(body, media_type=ICS, headers={"Cache-Control": "no-store"})


@page
async def feed_change(request: Request) -> Response:
    """The account page: start (or renew) the feed URL, or stop it."""
    svc = services(request)
    form = await read_form(request)
    async with svc.transaction() as session:
        who = await require_user(request, session, form)
        if form.get("action") == "stop":
            await calendar.stop_feed(session, who.user)
        else:
            await calendar.start_feed(session, who.user)
    return RedirectResponse("/account?saved=1#calendar", status_code=303)


def _host(public_url: str) -> str:
    return public_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "kumpul"


routes = [
    Route("/notifications", list_page, methods=["GET"], include_in_schema=False),
    Route("/notifications/read", read_page, methods=["POST"], include_in_schema=False),
    Route("/api/notifications", api_list, methods=["GET"]),
    Route("/api/notifications/read", api_read, methods=["POST"]),
    Route("/api/notifications/events", api_events, methods=["GET"], include_in_schema=False),
    Route("/account/notifications", choices_save, methods=["POST"], include_in_schema=False),
    Route("/account/calendar", feed_change, methods=["POST"], include_in_schema=False),
    Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"],
          include_in_schema=False),
    Route("/c/{slug}/live/{session_id}/calendar.ics", session_ics, methods=["GET"],
          include_in_schema=False),
    Route("/calendar/{token}.ics", feed_ics, methods=["GET"], include_in_schema=False),
]
