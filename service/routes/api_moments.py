"""API: highlights of an ended live session for moderators - the recording, its activity
per second, and the proposed moments to accept (as clips), adjust or discard."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import i18n
from service.db.models import Clip, LiveMoment, LiveSession
from service.domain import moments
from service.domain.recording_state import RecordingState
from service.domain.roles import Permission
from service.routes.links import Links, links
from service.storage.keys import live_rendition
from service.web import Services, int_param, json_body, member_access, services


def moment_view(moment: LiveMoment, clip: Clip | None) -> dict[str, object]:
    return {"id": moment.id, "start_ms": moment.start_ms, "end_ms": moment.end_ms,
            "score": moment.score, "why": moments.told_why(moment, i18n.current()),
            "state": moment.state,
            "clip": {"id": clip.id, "state": clip.state, "title": clip.title} if clip else None}


def _recording(signed: Links, live: LiveSession) -> dict[str, object]:
    view: dict[str, object] = {"state": live.recording_state,
                               "duration": (live.signals or {}).get("duration")}
    if live.recording_state == RecordingState.ready:
        view.update(signed.rendition(live_rendition(live.id)))
    return view


async def _page_data(svc: Services, request: Request) -> dict[str, object]:
    async with svc.db() as session:
        access = await member_access(request, session, Permission.moderate)
        live = await moments.ended_session(session, access, request.path_params["session_id"])
        rows = await moments.of_session(session, live)
        reactions, messages = await moments.events(session, live.id)
    limits = moments.Limits.from_settings(svc.settings)
    return {
        "session": {"id": live.id, "title": live.title, "state": live.state,
                    "ended_at": live.ended_at.isoformat() if live.ended_at else None},
        "recording": _recording(links(svc), live),
        "terms": {"version": live.terms_version, "sha256": live.terms_sha256,
                  "accepted_at": live.terms_accepted_at.isoformat()
                  if live.terms_accepted_at else None},
        "finder": {"state": live.moments_state, "min_seconds": limits.min_seconds,
                   "max_seconds": limits.max_seconds, "top": limits.top,
                   "clip_max_seconds": limits.clip_max_seconds},
        "activity": moments.activity(live.signals, reactions, messages),
        "moments": [moment_view(m, c) for m, c in rows],
    }


async def moments_list(request: Request) -> Response:
    """
    summary: An ended session's recording, its activity per second and its proposed moments (moderators).
    tags: [highlights]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: session_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Highlights, content: {application/json: {schema: {$ref: '#/components/schemas/Highlights'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    return JSONResponse(await _page_data(services(request), request))


async def moments_find(request: Request) -> Response:
    """
    summary: Find the moments again (after new reactions or changed settings). Decided moments stay.
    tags: [highlights]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: session_id, in: path, required: true, schema: {type: string}}
    responses:
      202: {description: Queued, content: {application/json: {schema: {$ref: '#/components/schemas/Highlights'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        live = await moments.ended_session(session, access, request.path_params["session_id"])
        await moments.request_find(session, access, live)
    return JSONResponse(await _page_data(svc, request), status_code=202)


async def moment_accept(request: Request) -> Response:
    """
    summary: Accept a moment, optionally adjusted; it is cut from the recording into an approved clip (the host's recording terms are its consent basis). Accepting again returns the same clip.
    tags: [highlights]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: session_id, in: path, required: true, schema: {type: string}}
      - {name: moment_id, in: path, required: true, schema: {type: integer}}
    requestBody:
      content:
        application/json:
          schema: {$ref: '#/components/schemas/MomentBounds'}
    responses:
      200: {description: Accepted before, content: {application/json: {schema: {$ref: '#/components/schemas/Moment'}}}}
      201: {description: Accepted, content: {application/json: {schema: {$ref: '#/components/schemas/Moment'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      415: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    moment_id = int_param(request.path_params["moment_id"], "moment_id")
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        body = await json_body(request) if await request.body() else {}
        live = await moments.ended_session(session, access, request.path_params["session_id"])
        clip, new = await moments.accept(
            session, access, live, moment_id, moments.Limits.from_settings(svc.settings),
            start_ms=body.get("start_ms"), end_ms=body.get("end_ms"),
            deadline_seconds=svc.settings.ingest_deadline_seconds)
        moment = await session.get(LiveMoment, moment_id)
        assert moment is not None
        view = moment_view(moment, clip)
    return JSONResponse(view, status_code=201 if new else 200)


async def _decide(request: Request, restore: bool) -> Response:
    svc = services(request)
    moment_id = int_param(request.path_params["moment_id"], "moment_id")
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.moderate)
        live = await moments.ended_session(session, access, request.path_params["session_id"])
        decide = moments.restore if restore else moments.discard
        moment = await decide(session, access, live, moment_id)
        view = moment_view(moment, None)
    return JSONResponse(view)


async def moment_discard(request: Request) -> Response:
    """
    summary: Discard a proposed moment; finding again will not propose it.
    tags: [highlights]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: session_id, in: path, required: true, schema: {type: string}}
      - {name: moment_id, in: path, required: true, schema: {type: integer}}
    responses:
      200: {description: Discarded, content: {application/json: {schema: {$ref: '#/components/schemas/Moment'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    return await _decide(request, restore=False)


async def moment_restore(request: Request) -> Response:
    """
    summary: Bring a discarded moment back to the proposals.
    tags: [highlights]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: session_id, in: path, required: true, schema: {type: string}}
      - {name: moment_id, in: path, required: true, schema: {type: integer}}
    responses:
      200: {description: Proposed again, content: {application/json: {schema: {$ref: '#/components/schemas/Moment'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    return await _decide(request, restore=True)


BASE = "/api/communities/{slug}/live/{session_id}/moments"
routes = [
    Route(BASE, moments_list, methods=["GET"]),
    Route(BASE + "/find", moments_find, methods=["POST"]),
    Route(BASE + "/{moment_id}/accept", moment_accept, methods=["POST"]),
    Route(BASE + "/{moment_id}/discard", moment_discard, methods=["POST"]),
    Route(BASE + "/{moment_id}/restore", moment_restore, methods=["POST"]),
]
