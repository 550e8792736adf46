"""Pages: forgot password, choose a new one with a link, an owner's reset link for a member,
and the site admin's outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service.domain import accounts, communities, outbox, resets
from service.errors import ApiError
from service.login import set_session_cookie
from service.routes.api_resets import ask_by_mail
from service.routes.pages import admin_action, page, read_form, render
from service.web import (
    client_ip,
    int_param,
    page_of,
    require_admin,
    require_same_site,
    services,
)


async def forgot(request: Request) -> Response:
    """Ask for a link by mail. Without mail set up, the page says whom to ask instead."""
    svc = services(request)
    context = {"mail_delivered": svc.mailer.delivers, "sent": False}
    if request.method == "GET":
        return render(request, "reset_request.html", context)
    require_same_site(request, svc.settings)
    form = await read_form(request)
    try:
        await ask_by_mail(svc, form.get("email"), client_ip(request))
    except ApiError as exc:
        return render(request, "reset_request.html", {**context, "email": form.get("email"),
                                                      "error": exc.body()["error"]},
                      status=exc.status)
    return render(request, "reset_request.html", {**context, "sent": True})


async def choose(request: Request) -> Response:
    """The link's page: a new password, then signed in (every other login ended)."""
    svc = services(request)
    token = request.path_params["token"]
    if request.method == "GET":
        async with svc.db() as session:
            await resets.find(session, token)
        return render(request, "reset.html", {})
    require_same_site(request, svc.settings)
    form = await read_form(request)
    try:
        async with svc.transaction() as session:
            user = await resets.use(session, token, form.get("password"))
            grant = await accounts.start_session(session, user, svc.settings.session_hours)
    except ApiError as exc:
        if exc.status in (404, 410):
            raise
        return render(request, "reset.html", {"error": exc.body()["error"]}, status=exc.status)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, svc, grant.token)
    return response


async def _reset_link(session: AsyncSession, access: communities.Access, form: FormData,
                      request: Request) -> dict[str, Any]:
    """An owner's reset link for a member, shown once on the Manage page."""
    settings = services(request).settings
    link = await resets.issue_for_member(
        session, access, int_param(request.path_params["user_id"], "user_id"),
        minutes=settings.reset_minutes)
    return {"new_reset_url": f"{settings.public_url}/reset/{link.token}",
            "reset_minutes": settings.reset_minutes}


@page
async def outbox_page(request: Request) -> Response:
    """Every mail Kumpul sent (or, with the `log` transport, only wrote down), newest first."""
    svc = services(request)
    shown = page_of(request)
    async with svc.db() as session:
        who = await require_admin(request, session)
        rows, next_offset = shown.cut(await outbox.recent(session, shown))
    return render(request, "outbox.html", {
        "mails": rows, "next_offset": next_offset, "transport": svc.mailer.name,
        "mail_delivered": svc.mailer.delivers}, who=who)


routes = [
    Route("/reset", forgot, methods=["GET", "POST"], include_in_schema=False),
    Route("/reset/{token}", choose, methods=["GET", "POST"], include_in_schema=False),
    Route("/c/{slug}/admin/members/{user_id}/reset-link", admin_action(_reset_link),
          methods=["POST"],
          include_in_schema=False),
    Route("/admin/outbox", outbox_page, methods=["GET"], include_in_schema=False),
]
