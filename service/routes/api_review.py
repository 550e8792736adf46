"""API: the moderators' review queue, decisions, trims and captions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import i18n
from service.db.models import Clip, ClipEdit, User
from service.domain import review
from service.domain.roles import Permission
from service.domain.trims import clip_frames, trim_of
from service.events import clip_event, told
from service.routes.links import Links, links
from service.storage.keys import clip_version
from service.web import int_param, json_body, member_access, page_of, services


def review_view(signed: Links, clip: Clip, member: User) -> dict[str, object]:
    start, end = trim_of(clip)
    video = clip.facts.get("video") or {}
    return {
        **told(clip_event(clip)), "member": {"id": member.id, "display_name": member.display_name},
        "prompt_id": clip.prompt_id, "source": clip.source, "frames": clip_frames(clip),
        "trim_in": start, "trim_out": end,
        "caption_name": clip.caption_name if clip.caption_name is not None
        else member.display_name, "caption_quote": clip.caption_quote,
        "consent": {"basis": clip.consent_basis, "release_version": clip.release_version,
                    "release_language": clip.release_language,
                    "release_sha256": clip.release_sha256,
                    "consented_at": clip.consented_at.isoformat()},
        "facts": {"container": clip.facts.get("container"),
                  "duration": clip.facts.get("duration"),
                  "size": clip.facts.get("size"), "video": {
                      k: video.get(k) for k in ("codec", "width", "height", "fps", "rotation",
                                                "color_transfer", "hdr")},
                  "audio": clip.facts.get("audio")},
        "media": signed.rendition(clip_version(clip.id, clip.version)),
    }


def edit_view(edit: ClipEdit, editor: str | None) -> dict[str, object]:
    return {"id": edit.id, "editor": editor, "changes": edit.changes,
            "created_at": edit.created_at.isoformat()}


async def queue(request: Request) -> Response:
    """
    summary: The review queue (moderators). Waiting clips by default, oldest first.
    tags: [review]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: state, in: query, schema: {type: string, enum: [ready_for_review, approved, rejected]}}
      - {name: prompt, in: query, schema: {type: integer}}
      - {name: source, in: query, schema: {type: string, enum: [upload, recording, live]}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Clips to review, content: {application/json: {schema: {$ref: '#/components/schemas/ReviewQueue'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    q = request.query_params
    async with svc.db() as session:
        access = await member_access(request, session, Permission.moderate)
        rows = await review.queue(
            session, access, state=q.get("state") or None,
            prompt_id=int_param(q["prompt"], "prompt") if q.get("prompt") else None,
            source=q.get("source") or None, page=page)
    rows, next_offset = page.cut(rows)
    return JSONResponse({"clips": [review_view(links(svc), c, u) for c, u in rows],
                         "reasons": [{"code": r.code, "message": i18n.current().gettext(r.message)}
                                     for r in review.REASONS.values()],
                         "next_offset": next_offset})


async def detail(request: Request) -> Response:
    """
    summary: One clip for review, with its media links, facts, consent and edit history.
    tags: [review]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: clip_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The clip, content: {application/json: {schema: {$ref: '#/components/schemas/ReviewClip'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.moderate)
        clip = await review.moderated_clip(session, access, request.path_params["clip_id"])
        member = await session.get(User, clip.member_id)
        edits = await review.history(session, clip)
    assert member is not None
    return JSONResponse({**review_view(links(svc), clip, member),
                         "edits": [edit_view(e, name) for e, name in edits]})


async def _decide(request: Request, decision: str) -> Response:
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        clip = await review.moderated_clip(session, access, request.path_params["clip_id"])
        if decision == "approve":
            await review.approve(session, access, clip)
        else:
            body = await json_body(request)
            await review.reject(session, access, clip, code=body.get("reason"),
                                note=body.get("note", ""))
        member = await session.get(User, clip.member_id)
    assert member is not None
    return JSONResponse(review_view(links(svc), clip, member))


async def approve(request: Request) -> Response:
    """
    summary: Approve a clip for reels.
    tags: [review]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: clip_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Approved, content: {application/json: {schema: {$ref: '#/components/schemas/ReviewClip'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    return await _decide(request, "approve")


async def reject(request: Request) -> Response:
    """
    summary: Reject a clip with a template reason and an optional note; the member sees both.
    tags: [review]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: clip_id, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Rejection'}
    responses:
      200: {description: Rejected, content: {application/json: {schema: {$ref: '#/components/schemas/ReviewClip'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    return await _decide(request, "reject")


async def edit(request: Request) -> Response:
    """
    summary: Trim (in/out frames at 30 fps) and caption (name, quote) a clip; kept as history.
    tags: [review]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: clip_id, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/ClipEdit'}
    responses:
      200: {description: Edited, content: {application/json: {schema: {$ref: '#/components/schemas/ReviewClip'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        clip = await review.moderated_clip(session, access, request.path_params["clip_id"])
        await review.edit(session, access, clip, await json_body(request))
        member = await session.get(User, clip.member_id)
        edits = await review.history(session, clip)
    assert member is not None
    return JSONResponse({**review_view(links(svc), clip, member),
                         "edits": [edit_view(e, name) for e, name in edits]})


routes = [
    Route("/api/communities/{slug}/review", queue, methods=["GET"]),
    Route("/api/communities/{slug}/review/{clip_id}", detail, methods=["GET"]),
    Route("/api/communities/{slug}/review/{clip_id}", edit, methods=["PATCH"]),
    Route("/api/communities/{slug}/review/{clip_id}/approve", approve, methods=["POST"]),
    Route("/api/communities/{slug}/review/{clip_id}/reject", reject, methods=["POST"]),
]
