"""API: story prompts, a member's own clips, their live status (SSE), withdrawal."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from service import i18n
from service.db.models import Prompt
from service.domain import clips, prompts, uploads
from service.domain.roles import Permission
from service.events import clip_channel, clip_event, encode, told
from service.locks import upload_lock
from service.routes.links import links
from service.routes.my_stories import story_views
from service.web import Services, int_param, json_body, member_access, page_of, services

KEEPALIVE_SECONDS = 15.0


def prompt_view(p: Prompt) -> dict[str, object]:
    return {"id": p.id, "question": p.question, "description": p.description,
            "max_seconds": p.max_seconds, "created_at": p.created_at.isoformat()}


async def prompts_list(request: Request) -> Response:
    """
    summary: Open story prompts of a community.
    tags: [stories]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Prompts, content: {application/json: {schema: {$ref: '#/components/schemas/Prompts'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view)
        rows = await prompts.open_prompts(session, access.community)
    rows, next_offset = page.slice(rows)
    return JSONResponse({"prompts": [prompt_view(p) for p in rows],
                         "next_offset": next_offset})


async def prompts_create(request: Request) -> Response:
    """
    summary: Ask the community a question to answer with stories (hosts, moderators, owners).
    tags: [stories]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/NewPrompt'}
    responses:
      201: {description: Created, content: {application/json: {schema: {$ref: '#/components/schemas/Prompt'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_prompts)
        body = await json_body(request)
        prompt = await prompts.create(session, access, question=body.get("question"),
                                      description=body.get("description", ""),
                                      max_seconds=body.get("max_seconds"))
    return JSONResponse(prompt_view(prompt), status_code=201)


async def prompts_close(request: Request) -> Response:
    """
    summary: Close a prompt; its stories stay.
    tags: [stories]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: prompt_id, in: path, required: true, schema: {type: integer}}
    responses:
      204: {description: Closed}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_prompts)
        await prompts.close(session, access,
                            int_param(request.path_params["prompt_id"], "prompt_id"))
    return Response(status_code=204)


async def my_clips(request: Request) -> Response:
    """
    summary: Your stories in this community, newest first, with their state and any reason.
    tags: [stories]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Clips, content: {application/json: {schema: {$ref: '#/components/schemas/Clips'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view)
        rows, next_offset = page.cut(await clips.clips_of_member(session, access, page=page))
        stories = await story_views(session, access, rows, links(svc))
    return JSONResponse({"clips": stories, "next_offset": next_offset})


async def my_clip_events(request: Request) -> Response:
    """Server-sent events: the current state of each of your clips, then every change."""
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view)
    channel = clip_channel(access.community.id, access.user.id)
    speech = i18n.current()

    async def stream() -> AsyncIterator[str]:
        pubsub = svc.redis.pubsub()
        await pubsub.subscribe(channel)  # before the snapshot, so no change falls between
        try:
            async with svc.db() as session:
                rows = await clips.clips_of_member(session, access)
            for clip in reversed(rows):
                yield f"data: {encode(told(clip_event(clip), speech))}\n\n"
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                   timeout=KEEPALIVE_SECONDS)
                if message is None:
                    yield ": keep-alive\n\n"
                elif message["type"] == "message":
                    event = told(json.loads(message["data"]), speech)
                    yield f"data: {encode(event)}\n\n"
        finally:
            with anyio.CancelScope(shield=True):
                await pubsub.unsubscribe(channel)
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def withdraw(request: Request) -> Response:
    """
    summary: Withdraw your consent for a story; it leaves every use and its media is deleted.
    tags: [stories]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: clip_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Withdrawn, content: {application/json: {schema: {$ref: '#/components/schemas/Clip'}}}}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      423: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    clip_id = request.path_params["clip_id"]
    async with _upload_guard(svc, clip_id), svc.transaction() as session:
        access = await member_access(request, session, Permission.view)
        clip = await clips.member_clip(session, access, clip_id)
        await uploads.drop_unfinished(session, svc.upload_sink, clip.id)
        await clips.withdraw(session, access, clip)
        event = told(clip_event(clip))
    return JSONResponse(event)


@contextlib.asynccontextmanager
async def _upload_guard(svc: Services, clip_id: str) -> AsyncIterator[None]:
    """Hold an unfinished upload's lock, so no PATCH writes while consent is withdrawn."""
    async with svc.db() as session:
        upload = await uploads.unfinished(session, clip_id)
    if upload is None:
        yield
        return
    async with upload_lock(svc.redis, upload.id, svc.heartbeat.instance):
        yield


routes = [
    Route("/api/communities/{slug}/prompts", prompts_list, methods=["GET"]),
    Route("/api/communities/{slug}/prompts", prompts_create, methods=["POST"]),
    Route("/api/communities/{slug}/prompts/{prompt_id}/close", prompts_close, methods=["POST"]),
    Route("/api/communities/{slug}/clips/mine", my_clips, methods=["GET"]),
    Route("/api/communities/{slug}/clips/events", my_clip_events, methods=["GET"],
          include_in_schema=False),
    Route("/api/communities/{slug}/clips/{clip_id}/withdraw", withdraw, methods=["POST"]),
]
