"""Moderators' pages: the review queue, the reels list and the reel composer. They are
shells around the JSON API (review.js, reels.js, composer.js)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.domain import communities, prompts, reels
from service.domain.roles import Permission
from service.routes.pages import page, render
from service.web import require_user, services


async def _moderator_page(request: Request, template: str, reel_id: str | None = None) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        access = await communities.require(session, who.user, request.path_params["slug"],
                                           Permission.moderate)
        open_prompts = await prompts.open_prompts(session, access.community)
        reel = await reels.get(session, access, reel_id) if reel_id else None
    return render(request, template, {"community": access.community, "prompts": open_prompts,
                                      "reel": reel}, who=who)


@page
async def review_page(request: Request) -> Response:
    return await _moderator_page(request, "review.html")


@page
async def reels_page(request: Request) -> Response:
    return await _moderator_page(request, "reels.html")


@page
async def composer_page(request: Request) -> Response:
    return await _moderator_page(request, "composer.html", request.path_params["reel_id"])


routes = [
    Route("/c/{slug}/review", review_page, methods=["GET"]),
    Route("/c/{slug}/reels", reels_page, methods=["GET"]),
    Route("/c/{slug}/reels/{reel_id}", composer_page, methods=["GET"]),
]
