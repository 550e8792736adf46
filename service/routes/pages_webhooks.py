"""The owners' Webhooks page (`/c/{slug}/admin/webhooks`): endpoints, their secrets and
delivery logs; forms post here and the domain does the work, as for the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service.db.models import WebhookEndpoint
from service.domain import communities, deliveries, webhooks
from service.domain.communities import Access
from service.domain.paging import Page
from service.domain.roles import Permission
from service.errors import ApiError
from service.routes.pages import page, read_form, render
from service.web import Principal, int_param, require_user, services

LOG_ROWS = 20  # deliveries shown per endpoint on the page (the API pages through 200)


async def webhooks_page(request: Request, who: Principal, *, status: int = 200,
                        **extra: Any) -> Response:
    svc = services(request)
    async with svc.db() as session:
        access = await communities.require(session, who.user, request.path_params["slug"],
                                           Permission.manage_webhooks)
        endpoints = await webhooks.of_community(session, access)
        logs = {e.id: await webhooks.deliveries(session, e, Page(LOG_ROWS)) for e in endpoints}
    return render(request, "webhooks.html", {
        "community": access.community, "endpoints": endpoints,
        "logs": {k: v[:LOG_ROWS] for k, v in logs.items()},
        "event_types": webhooks.EVENT_TYPES,
        "rotation_hours": svc.settings.webhook_rotation_hours, **extra}, who=who,
        status=status)


@page
async def show(request: Request) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
    return await webhooks_page(request, who)


Action = Callable[[AsyncSession, Access, FormData, Request], Awaitable[dict[str, Any] | None]]


def action(work: Action) -> Callable[[Request], Awaitable[Response]]:
    """POST handler: check the owner, run the action in one transaction, show the page."""
    @page
    async def handler(request: Request) -> Response:
        svc = services(request)
        form = await read_form(request)
        async with svc.db() as session:
            who = await require_user(request, session, form)
        try:
            async with svc.transaction() as session:
                access = await communities.require(session, who.user,
                                                   request.path_params["slug"],
                                                   Permission.manage_webhooks)
                shown = await work(session, access, form, request)
        except ApiError as exc:
            if exc.status == 404 and exc.code == "community_not_found":
                raise
            return await webhooks_page(request, who, status=exc.status, error=exc)
        if shown:
            return await webhooks_page(request, who, **shown)
        return RedirectResponse(f"/c/{request.path_params['slug']}/admin/webhooks",
                                status_code=303)

    handler.__name__ = work.__name__
    return handler


def _allow(request: Request) -> tuple[str, ...]:
    return services(request).settings.webhook_allow_hosts


async def _create(session: AsyncSession, access: Access, form: FormData,
                  request: Request) -> dict[str, Any] | None:
    endpoint = await webhooks.create(session, access, url=form.get("url"),
                                     types=form.getlist("event_types"),
                                     description=form.get("description", ""),
                                     allow=_allow(request))
    return {"new_secret": endpoint.secret, "new_secret_for": endpoint.id}


async def _endpoint(session: AsyncSession, access: Access,
                    request: Request) -> WebhookEndpoint:
    return await webhooks.get(session, access, request.path_params["endpoint_id"])


async def _types(session: AsyncSession, access: Access, form: FormData,
                 request: Request) -> dict[str, Any] | None:
    await webhooks.update(session, access, await _endpoint(session, access, request),
                          types=form.getlist("event_types"))
    return None


async def _switch(session: AsyncSession, access: Access, form: FormData,
                  request: Request) -> dict[str, Any] | None:
    await webhooks.update(session, access, await _endpoint(session, access, request),
                          enabled=form.get("enabled") == "1")
    return None


async def _rotate(session: AsyncSession, access: Access, form: FormData,
                  request: Request) -> dict[str, Any] | None:
    endpoint = await webhooks.rotate(session, access, await _endpoint(session, access, request),
                                     services(request).settings.webhook_rotation_hours)
    return {"new_secret": endpoint.secret, "new_secret_for": endpoint.id}


async def _delete(session: AsyncSession, access: Access, form: FormData,
                  request: Request) -> dict[str, Any] | None:
    await webhooks.delete(session, access, await _endpoint(session, access, request))
    return None


async def _send_again(session: AsyncSession, access: Access, form: FormData,
                      request: Request) -> dict[str, Any] | None:
    await deliveries.send_again(session, access, request.path_params["endpoint_id"],
                                int_param(request.path_params["delivery_id"], "delivery_id"))
    return None


BASE = "/c/{slug}/admin/webhooks"
routes = [
    Route(BASE, show, methods=["GET"], include_in_schema=False),
    Route(BASE, action(_create), methods=["POST"], include_in_schema=False),
    Route(BASE + "/{endpoint_id}/types", action(_types), methods=["POST"],
          include_in_schema=False),
    Route(BASE + "/{endpoint_id}/switch", action(_switch), methods=["POST"],
          include_in_schema=False),
    Route(BASE + "/{endpoint_id}/rotate", action(_rotate), methods=["POST"],
          include_in_schema=False),
    Route(BASE + "/{endpoint_id}/delete", action(_delete), methods=["POST"],
          include_in_schema=False),
    Route(BASE + "/{endpoint_id}/deliveries/{delivery_id}/send-again", action(_send_again),
          methods=["POST"], include_in_schema=False),
]
