"""API: log in and out, who am I, join by invite, first-owner setup, personal tokens."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.domain import accounts, communities
from service.login import (
    clear_session_cookie,
    joining_user,
    log_in,
    set_session_cookie,
    signed_in,
)
from service.routes import views
from service.web import (
    SESSION_COOKIE,
    client_ip,
    int_param,
    json_body,
    page_of,
    require_user,
    services,
)


async def login(request: Request) -> Response:
    """
    summary: Log in with email and password; sets the session cookie.
    tags: [auth]
    security: []
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Login'}
    responses:
      200: {description: Logged in, content: {application/json: {schema: {$ref: '#/components/schemas/Me'}}}}
      401: {$ref: '#/components/responses/Error'}
      429: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    body = await json_body(request)
    async with svc.transaction() as session:
        user, grant = await log_in(svc, session, body.get("email"), body.get("password"),
                                   client_ip(request))
    response = JSONResponse({"user": views.user(user), "csrf_token": grant.csrf_token})
    set_session_cookie(response, svc, grant.token)
    return response


async def logout(request: Request) -> Response:
    """
    summary: End this browser session.
    tags: [auth]
    responses:
      204: {description: Logged out}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        await require_user(request, session)
        if cookie := request.cookies.get(SESSION_COOKIE):
            await accounts.end_session(session, cookie)
    response = Response(status_code=204)
    clear_session_cookie(response, svc)
    return response


async def me(request: Request) -> Response:
    """
    summary: The signed-in user, their communities and (for cookie sessions) the CSRF token.
    tags: [auth]
    responses:
      200: {description: You, content: {application/json: {schema: {$ref: '#/components/schemas/Me'}}}}
      401: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        who = await require_user(request, session)
        mine = await communities.communities_of(session, who.user)
    return JSONResponse({"user": views.user(who.user), "csrf_token": who.csrf_token,
                         "communities": [views.community(c, r) for c, r in mine]})


async def me_update(request: Request) -> Response:
    """
    summary: Your own language and time zone; null follows each community (and your browser).
    tags: [auth]
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/PersonalPlace'}
    responses:
      200: {description: You, content: {application/json: {schema: {$ref: '#/components/schemas/User'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        who = await require_user(request, session)
        body = await json_body(request)
        accounts.change_place(who.user, **{key: body[key] for key in ("language", "time_zone")
                                           if key in body})
        out = views.user(who.user)
    return JSONResponse(out)


async def invite_preview(request: Request) -> Response:
    """
    summary: What an invite link leads to, if it can still be used.
    tags: [auth]
    security: []
    parameters:
      - {name: token, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The invite, content: {application/json: {schema: {$ref: '#/components/schemas/InvitePreview'}}}}
      404: {$ref: '#/components/responses/Error'}
      410: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        invite, community = await communities.find_invite(session, request.path_params["token"])
    return JSONResponse({"community": views.community(community), "role": invite.role})


async def invite_accept(request: Request) -> Response:
    """
    summary: Join through an invite, signing up at the same time when not logged in.
    description: Logged-in users join as they are; anyone else sends email, display_name and password.
    tags: [auth]
    security: []
    parameters:
      - {name: token, in: path, required: true, schema: {type: string}}
    requestBody:
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Signup'}
    responses:
      200: {description: Already a member (the link keeps its uses), content: {application/json: {schema: {$ref: '#/components/schemas/Joined'}}}}
      201: {description: Joined, content: {application/json: {schema: {$ref: '#/components/schemas/Joined'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      410: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    token = request.path_params["token"]
    async with svc.transaction() as session:
        fields = {}
        if not signed_in(request):
            fields = await json_body(request)
            await communities.find_invite(session, token)  # fail fast, before hashing
        user, grant = await joining_user(request, svc, session, fields)
        community, membership = await communities.accept_invite(session, token, user)
        joined = membership in session.new
    response = JSONResponse({"user": views.user(user), "community": views.community(
        community, membership.role), "csrf_token": grant.csrf_token if grant else None},
        status_code=201 if joined else 200)
    if grant:
        set_session_cookie(response, svc, grant.token)
    return response


async def tokens_list(request: Request) -> Response:
    """
    summary: Your personal API tokens (never their secret part).
    tags: [tokens]
    parameters:
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Tokens, content: {application/json: {schema: {$ref: '#/components/schemas/Tokens'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        rows = await accounts.api_tokens(session, who.user)
    rows, next_offset = page.slice(rows)
    return JSONResponse({"tokens": [views.token(t) for t in rows],
                         "next_offset": next_offset})


async def tokens_create(request: Request) -> Response:
    """
    summary: Create a personal API token; its secret is shown once.
    tags: [tokens]
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, required: [name], properties: {name: {type: string, maxLength: 80}}}
    responses:
      201: {description: Created, content: {application/json: {schema: {$ref: '#/components/schemas/NewToken'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        who = await require_user(request, session)
        body = await json_body(request)
        secret, row = await accounts.create_api_token(session, who.user, body.get("name"))
    return JSONResponse({"token": secret, **views.token(row)}, status_code=201)


async def tokens_revoke(request: Request) -> Response:
    """
    summary: Revoke one of your tokens.
    tags: [tokens]
    parameters:
      - {name: token_id, in: path, required: true, schema: {type: integer}}
    responses:
      204: {description: Revoked}
      401: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        who = await require_user(request, session)
        await accounts.revoke_api_token(session, who.user,
                                        int_param(request.path_params["token_id"], "token_id"))
    return Response(status_code=204)


routes = [
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/me", me_update, methods=["PATCH"]),
    Route("/api/invites/{token}", invite_preview, methods=["GET"]),
    Route("/api/invites/{token}/accept", invite_accept, methods=["POST"]),
    Route("/api/tokens", tokens_list, methods=["GET"]),
    Route("/api/tokens", tokens_create, methods=["POST"]),
    Route("/api/tokens/{token_id}", tokens_revoke, methods=["DELETE"]),
]
