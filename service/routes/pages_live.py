"""Live pages: schedule (form), the host studio and the viewer page. The pages speak WHIP,
WHEP and the room channel themselves (live.js, studio.js, watch.js)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service import i18n
from service.db.models import LiveSession
from service.domain import communities, live
from service.domain.roles import Permission
from service.errors import ApiError, Forbidden
from service.live import turn
from service.routes.links import links
from service.routes.pages import community_page, page, read_form, render
from service.web import Services, require_user, services, speech_for


def _local(speech: i18n.Speech, raw: object) -> object:
    """A datetime-local value ("2026-12-05T19:00") read in the viewer's zone, as UTC."""
    if isinstance(raw, str) and len(raw) == 16:
        try:
            return speech.parse_local(raw).isoformat()
        except ValueError:
            return raw
    return raw


@page
async def schedule(request: Request) -> Response:
    svc = services(request)
    form = await read_form(request)
    slug = request.path_params["slug"]
    async with svc.db() as session:
        who = await require_user(request, session, form)
    try:
        async with svc.transaction() as session:
            access = await communities.require(session, who.user, slug,
                                               Permission.host_sessions)
            # the form's wall-clock time is in the host's zone (shown beside the field)
            speech = speech_for(request, user=who.user, community=access.community)
            starts = form.get("starts_at")
            row, _ = await live.schedule(
                session, access, title=form.get("title"),
                description=form.get("description", ""), starts_at=_local(speech, starts))
    except ApiError as exc:
        if exc.code == "community_not_found":
            raise
        return await community_page(request, who, status=exc.status, error=exc)
    return RedirectResponse(f"/c/{slug}/live/{row.id}/scheduled", status_code=303)


def watch_url(svc: Services, slug: str, row: LiveSession) -> str:
    return f"{svc.settings.public_url.rstrip('/')}/c/{slug}/live/{row.id}"


async def _live_page(request: Request, template: str, host_only: bool) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        access = await communities.require(session, who.user, request.path_params["slug"],
                                           Permission.view)
        row = await live.get(session, access, request.path_params["session_id"])
    if host_only and row.host_id != who.user.id:
        raise Forbidden("Only the session's host opens the studio.", code="not_the_host")
    context: dict[str, Any] = {
        "community": access.community, "session": row,
        "ice_servers": [server.for_page()
                        for server in turn.servers_for(svc.settings, f"user-{who.user.id}")],
        "terms": live.TERMS, "terms_version": live.TERMS_VERSION,
        "watch_url": watch_url(svc, access.community.slug, row),
        "replay": links(svc).replay(row)}
    return render(request, template, context, who=who)


@page
async def scheduled(request: Request) -> Response:
    """After scheduling, the session's time and its link to share, before the studio."""
    return await _live_page(request, "scheduled.html", host_only=True)


@page
async def studio(request: Request) -> Response:
    return await _live_page(request, "studio.html", host_only=True)


@page
async def watch(request: Request) -> Response:
    return await _live_page(request, "watch.html", host_only=False)


@page
async def highlights(request: Request) -> Response:
    """An ended session's proposed moments, for moderators (highlights.js speaks the API)."""
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        access = await communities.require(session, who.user, request.path_params["slug"],
                                           Permission.moderate)
        row = await live.get(session, access, request.path_params["session_id"])
    return render(request, "highlights.html", {"community": access.community, "session": row},
                  who=who)


routes = [
    Route("/c/{slug}/live", schedule, methods=["POST"]),
    Route("/c/{slug}/live/{session_id}", watch, methods=["GET"]),
    Route("/c/{slug}/live/{session_id}/studio", studio, methods=["GET"]),
    Route("/c/{slug}/live/{session_id}/scheduled", scheduled, methods=["GET"]),
    Route("/c/{slug}/live/{session_id}/highlights", highlights, methods=["GET"]),
]
