"""Pages for stories: share one (record or pick a file), follow mine, ask with prompts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service.domain import clips, communities, prompts
from service.domain.roles import Permission
from service.domain.story_rules import StoryLimits
from service.errors import ApiError
from service.routes.links import links
from service.routes.my_stories import story_views
from service.routes.pages import community_page, page, read_form, render
from service.web import int_param, page_of, require_user, services, speech_for


@page
async def share(request: Request) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        access = await communities.require(session, who.user, request.path_params["slug"],
                                           Permission.share_story)
        prompt = await clips.open_prompt(session, access, request.query_params.get("prompt"))
        speech = speech_for(request, user=who.user, community=access.community)
        release = await communities.current_release(session, access.community, speech.language)
    limits = StoryLimits.from_settings(svc.settings, prompt.max_seconds if prompt else None)
    return render(request, "share.html", {
        "community": access.community, "prompt": prompt, "release": release,
        "max_seconds": limits.max_seconds, "max_bytes": limits.max_bytes,
        "accept": ",".join(f".{c}" for c in limits.containers) + ",video/*",
        "families": ",".join(sorted(limits.families)),
    }, who=who)


@page
async def my_stories(request: Request) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        access = await communities.require(session, who.user, request.path_params["slug"],
                                           Permission.view)
        shown = page_of(request)
        rows, next_offset = shown.cut(await clips.clips_of_member(session, access, page=shown))
        speech = speech_for(request, user=who.user, community=access.community)
        stories = await story_views(session, access, rows, links(svc), speech)
    for story, clip in zip(stories, rows, strict=True):
        story["created"] = clip.created_at  # the page writes it in the reader's words
    return render(request, "stories.html", {
        "community": access.community, "clips": stories,
        "next_offset": next_offset, "offset": shown.offset, "limit": shown.limit}, who=who)


async def _prompt_action(request: Request, form: FormData,
                         action: str) -> Response:
    svc = services(request)
    slug = request.path_params["slug"]
    async with svc.db() as session:
        who = await require_user(request, session, form)
    try:
        async with svc.transaction() as session:
            access = await communities.require(session, who.user, slug,
                                               Permission.manage_prompts)
            await _apply(session, access, form, request, action)
    except ApiError as exc:
        if exc.code == "community_not_found":
            raise
        return await community_page(request, who, status=exc.status, error=exc)
    return RedirectResponse(f"/c/{slug}", status_code=303)


async def _apply(session: AsyncSession, access: communities.Access, form: FormData,
                 request: Request, action: str) -> None:
    if action == "create":
        await prompts.create(session, access, question=form.get("question"),
                             description=form.get("description", ""),
                             max_seconds=form.get("max_seconds") or None)
    else:
        await prompts.close(session, access,
                            int_param(request.path_params["prompt_id"], "prompt_id"))


@page
async def prompt_create(request: Request) -> Response:
    return await _prompt_action(request, await read_form(request), "create")


@page
async def prompt_close(request: Request) -> Response:
    return await _prompt_action(request, await read_form(request), "close")


routes = [
    Route("/c/{slug}/share", share, methods=["GET"], include_in_schema=False),
    Route("/c/{slug}/stories", my_stories, methods=["GET"], include_in_schema=False),
    Route("/c/{slug}/prompts", prompt_create, methods=["POST"], include_in_schema=False),
    Route("/c/{slug}/prompts/{prompt_id}/close", prompt_close, methods=["POST"],
          include_in_schema=False),
]
