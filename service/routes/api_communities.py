"""API: communities, their members and roles, invites, release texts and audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.domain import audit, communities
from service.domain.roles import Permission
from service.routes import views
from service.web import (
    int_param,
    json_body,
    member_access,
    page_of,
    require_admin,
    require_user,
    services,
)


def invite_url(request: Request, token: str) -> str:
    return f"{services(request).settings.public_url}/invite/{token}"


async def list_mine(request: Request) -> Response:
    """
    summary: Communities you belong to, with your role in each.
    tags: [communities]
    parameters:
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Communities, content: {application/json: {schema: {$ref: '#/components/schemas/Communities'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        rows = await communities.communities_of(session, who.user)
    rows, next_offset = page.slice(rows)
    return JSONResponse({"communities": [views.community(c, r) for c, r in rows],
                         "next_offset": next_offset})


async def create(request: Request) -> Response:
    """
    summary: Create a community (site admins); you become its owner.
    tags: [communities]
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/NewCommunity'}
    responses:
      201: {description: Created, content: {application/json: {schema: {$ref: '#/components/schemas/Community'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        who = await require_admin(request, session)
        body = await json_body(request)
        community = await communities.create_community(
            session, name=body.get("name"), slug=body.get("slug"), owner=who.user,
            language=body.get("language") or svc.settings.language,
            time_zone=body.get("time_zone") or svc.settings.time_zone)
    return JSONResponse(views.community(community, "owner"), status_code=201)


async def show(request: Request) -> Response:
    """
    summary: One community, with your role and its current release text.
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The community, content: {application/json: {schema: {$ref: '#/components/schemas/CommunityDetail'}}}}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view)
        release = await communities.current_release(session, access.community)
    return JSONResponse({**views.community(access.community, access.role),
                         "release": views.release(release)})


async def members_list(request: Request) -> Response:
    """
    summary: Members of a community and their roles.
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Members, content: {application/json: {schema: {$ref: '#/components/schemas/Members'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view)
        rows = await communities.members(session, access.community, page=page)
        can_see_email = access.role == "owner"
    rows, next_offset = page.cut(rows)
    out = [views.member(m, u) for m, u in rows]
    if not can_see_email:
        for row in out:
            row.pop("email")
    return JSONResponse({"members": out,
                         "next_offset": next_offset})


async def member_update(request: Request) -> Response:
    """
    summary: Change a member's role (owners).
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: user_id, in: path, required: true, schema: {type: integer}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, required: [role], properties: {role: {$ref: '#/components/schemas/Role'}}}
    responses:
      200: {description: Updated, content: {application/json: {schema: {type: object}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_members)
        body = await json_body(request)
        user_id = int_param(request.path_params["user_id"], "user_id")
        membership = await communities.change_role(session, access, user_id, body.get("role"))
    return JSONResponse({"user_id": user_id, "role": membership.role})


async def member_remove(request: Request) -> Response:
    """
    summary: Remove a member (owners).
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: user_id, in: path, required: true, schema: {type: integer}}
    responses:
      204: {description: Removed}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_members)
        await communities.remove_member(session, access,
                                        int_param(request.path_params["user_id"], "user_id"))
    return Response(status_code=204)


async def invites_list(request: Request) -> Response:
    """
    summary: Open invites of a community (owners).
    tags: [invites]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Invites, content: {application/json: {schema: {$ref: '#/components/schemas/Invites'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.manage_members)
        rows = await communities.open_invites(session, access.community)
    rows, next_offset = page.slice(rows)
    return JSONResponse({"invites": [views.invite(i) for i in rows],
                         "next_offset": next_offset})


async def invites_create(request: Request) -> Response:
    """
    summary: Create an invite link (owners); the link is shown once.
    tags: [invites]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/NewInvite'}
    responses:
      201: {description: Created, content: {application/json: {schema: {$ref: '#/components/schemas/Invite'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_members)
        body = await json_body(request)
        token, invite = await communities.create_invite(
            session, access, role=body.get("role", "member"), max_uses=body.get("max_uses", 1),
            days=body.get("days", svc.settings.invite_days), note=body.get("note", ""))
    return JSONResponse(views.invite(invite, invite_url(request, token)), status_code=201)


async def invites_revoke(request: Request) -> Response:
    """
    summary: Withdraw an invite link (owners).
    tags: [invites]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: invite_id, in: path, required: true, schema: {type: integer}}
    responses:
      204: {description: Revoked}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_members)
        await communities.revoke_invite(session, access,
                                        int_param(request.path_params["invite_id"], "invite_id"))
    return Response(status_code=204)


async def release_publish(request: Request) -> Response:
    """
    summary: Publish a new version of the community's release text (owners).
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, required: [body], properties: {body: {type: string}, language: {$ref: '#/components/schemas/Language'}}}
    responses:
      201: {description: Published, content: {application/json: {schema: {$ref: '#/components/schemas/Release'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_members)
        body = await json_body(request)
        release = await communities.publish_release(session, access.community, body.get("body"),
                                                    access.user, body.get("language"))
    return JSONResponse(views.release(release), status_code=201)


async def settings_update(request: Request) -> Response:
    """
    summary: Change the community's language and time zone (owners); members see its pages in them unless they chose their own.
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Place'}
    responses:
      200: {description: Changed, content: {application/json: {schema: {$ref: '#/components/schemas/Community'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_members)
        body = await json_body(request)
        community = await communities.change_settings(
            session, access, language=body.get("language"), time_zone=body.get("time_zone"))
        out = views.community(community, access.role)
    return JSONResponse(out)


async def audit_list(request: Request) -> Response:
    """
    summary: The community's audit log, newest first (owners and moderators).
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: before, in: query, required: false, schema: {type: integer}}
    responses:
      200: {description: Events, content: {application/json: {schema: {$ref: '#/components/schemas/AuditEvents'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    before = request.query_params.get("before")
    async with svc.db() as session:
        access = await member_access(request, session, Permission.view_audit)
        rows = await audit.events(session, access.community.id,
                                  before_id=int_param(before, "before") if before else None)
    return JSONResponse({"events": [views.audit_event(e) for e in rows]})


routes = [
    Route("/api/communities", list_mine, methods=["GET"]),
    Route("/api/communities", create, methods=["POST"]),
    Route("/api/communities/{slug}", show, methods=["GET"]),
    Route("/api/communities/{slug}", settings_update, methods=["PATCH"]),
    Route("/api/communities/{slug}/members", members_list, methods=["GET"]),
    Route("/api/communities/{slug}/members/{user_id}", member_update, methods=["PATCH"]),
    Route("/api/communities/{slug}/members/{user_id}", member_remove, methods=["DELETE"]),
    Route("/api/communities/{slug}/invites", invites_list, methods=["GET"]),
    Route("/api/communities/{slug}/invites", invites_create, methods=["POST"]),
    Route("/api/communities/{slug}/invites/{invite_id}", invites_revoke, methods=["DELETE"]),
    Route("/api/communities/{slug}/release", release_publish, methods=["POST"]),
    Route("/api/communities/{slug}/audit", audit_list, methods=["GET"]),
]
