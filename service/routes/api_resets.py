"""API: password resets (by mail, or a link an owner makes for a member)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.domain import accounts, resets
from service.domain.roles import Permission
from service.login import set_session_cookie
from service.routes import views
from service.web import Services, client_ip, int_param, json_body, member_access, services

RESETS_PER_HOUR = 5  # per address: enough for a forgetful person, too few to bomb a mailbox


async def ask_by_mail(svc: Services, email: object, ip: str) -> None:
    """Mail a reset link if the address has an account (the answer never says)."""
    accounts.clean_email(email)  # a 422 for a malformed address, before it costs a try
    await svc.limiter.check(f"reset:ip:{ip}", RESETS_PER_HOUR,
                            message="Too many password reset requests.",
                            code="too_many_resets")
    await svc.limiter.hit(f"reset:ip:{ip}", 3600)
    async with svc.transaction() as session:
        await resets.request_by_mail(session, email, minutes=svc.settings.reset_minutes,
                                     base_url=svc.settings.public_url,
                                     transport=svc.mailer.name)


async def request_reset(request: Request) -> Response:
    """
    summary: Ask for a password reset link by mail. The answer is the same whether or not the address has an account.
    tags: [auth]
    security: []
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, properties: {email: {type: string}}, required: [email]}
    responses:
      202: {description: If the address has an account a link is on its way, content: {application/json: {schema: {type: object, properties: {status: {type: string}, mail_delivered: {type: boolean}}}}}}
      400: {$ref: '#/components/responses/Error'}
      415: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
      429: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    body = await json_body(request)
    await ask_by_mail(svc, body.get("email"), client_ip(request))
    return JSONResponse({"status": "sent_if_account", "mail_delivered": svc.mailer.delivers},
                        status_code=202)


async def use_reset(request: Request) -> Response:
    """
    summary: Set a new password with a reset link (once); every other login of the account ends, and this one begins.
    tags: [auth]
    security: []
    parameters:
      - {name: token, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, properties: {password: {type: string}}, required: [password]}
    responses:
      200: {description: Password set and logged in, content: {application/json: {schema: {$ref: '#/components/schemas/Me'}}}}
      400: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      410: {$ref: '#/components/responses/Error'}
      415: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    body = await json_body(request)
    async with svc.transaction() as session:
        user = await resets.use(session, request.path_params["token"], body.get("password"))
        grant = await accounts.start_session(session, user, svc.settings.session_hours)
    response = JSONResponse({"user": views.user(user), "csrf_token": grant.csrf_token})
    set_session_cookie(response, svc, grant.token)
    return response


async def member_reset_link(request: Request) -> Response:
    """
    summary: Make a password reset link for a member (owners; an owner's or admin's only by a site admin). Hand it over yourself.
    tags: [communities]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: user_id, in: path, required: true, schema: {type: integer}}
    responses:
      201: {description: The link, content: {application/json: {schema: {type: object, properties: {url: {type: string}, expires_at: {type: string, format: date-time}}}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_members)
        link = await resets.issue_for_member(
            session, access, int_param(request.path_params["user_id"], "user_id"),
            minutes=svc.settings.reset_minutes)
    return JSONResponse({"url": f"{svc.settings.public_url}/reset/{link.token}",
                         "expires_at": link.expires_at.isoformat()}, status_code=201)


routes = [
    Route("/api/auth/password-reset", request_reset, methods=["POST"]),
    Route("/api/auth/password-reset/{token}", use_reset, methods=["POST"]),
    Route("/api/communities/{slug}/members/{user_id}/reset-link", member_reset_link,
          methods=["POST"]),
]
