"""API: the member lifecycle in numbers (owners)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.domain import lifecycle
from service.domain.roles import Permission
from service.web import member_access, services


async def numbers(request: Request) -> Response:
    """
    summary: "The member lifecycle in numbers (owners): invites sent, accepted, then per prompt the people with a first story, an approved one, and one featured in a public reel."
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Numbers, content: {application/json: {schema: {$ref: '#/components/schemas/LifecycleNumbers'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view_numbers)
        found = await lifecycle.numbers(session, access.community)
    return JSONResponse(found.to_json())


routes = [
    Route("/api/communities/{slug}/numbers", numbers, methods=["GET"]),
]
