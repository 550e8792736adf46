"""Server-rendered pages. Forms post here; the domain does the work, as for the API."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service import i18n, security
from service.db.models import Community, utcnow
from service.domain import (
    accounts,
    calendar,
    communities,
    lifecycle,
    live,
    notices,
    notifications,
    prompts,
    reels,
    webhooks,
)
from service.domain.recording_state import RecordingState
from service.domain.roles import Permission, Role, allows
from service.errors import ApiError, Unauthorized
from service.login import clear_session_cookie, joining_user, log_in, set_session_cookie
from service.routes.links import links
from service.storage.keys import live_rendition
from service.web import (
    SESSION_COOKIE,
    Principal,
    Services,
    check_text,
    client_ip,
    int_param,
    principal,
    require_admin,
    require_same_site,
    require_user,
    services,
    speech_for,
)

Handler = Callable[[Request], Awaitable[Response]]


def safe_next(raw: object) -> str:
    """Only same-site paths: no open redirects."""
    value = str(raw or "/")
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def render(request: Request, template: str, context: dict[str, Any], *,
           who: Principal | None = None, status: int = 200) -> Response:
    community = context.get("community")
    speech_for(request, user=who.user if who else None,
               community=community if isinstance(community, Community) else None)
    context = {"me": who.user if who else None, "csrf_token": who.csrf_token if who else None,
               "unread": who.unread if who else 0, **context}
    if isinstance(context.get("error"), ApiError):  # told in the page's language
        context["error"] = context["error"].body()["error"]
    return services(request).templates.TemplateResponse(request, template, context,
                                                        status_code=status)


def page(handler: Handler) -> Handler:
    """Pages send people to the login form instead of answering 401."""
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Unauthorized:
            if request.method == "GET":
                response = to_login(request)
                clear_session_cookie(response, services(request))
                return response
            raise

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def read_form(request: Request) -> FormData:
    form = await request.form(max_files=0, max_fields=50)
    check_text([*form.keys(), *(v for v in form.values() if isinstance(v, str))])
    return form


# --- signing in -------------------------------------------------------------------------

@page
async def home(request: Request) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await principal(request, session)
        if who is None:
            return to_login(request)
        mine = await communities.communities_of(session, who.user)
    if len(mine) == 1 and not who.user.is_admin:
        return RedirectResponse(f"/c/{mine[0][0].slug}", status_code=303)
    return render(request, "home.html", {"communities": mine}, who=who)


async def login_form(request: Request) -> Response:
    return render(request, "login.html", {"next": safe_next(request.query_params.get("next"))})


async def login_submit(request: Request) -> Response:
    svc = services(request)
    require_same_site(request, svc.settings)
    form = await read_form(request)
    target = safe_next(form.get("next"))
    try:
        async with svc.transaction() as session:
            _, grant = await log_in(svc, session, form.get("email"), form.get("password"),
                                    client_ip(request))
    except ApiError as exc:
        return render(request, "login.html", {"next": target, "email": form.get("email"),
                                              "error": exc}, status=exc.status)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, svc, grant.token)
    return response


async def logout(request: Request) -> Response:
    svc = services(request)
    form = await read_form(request)
    async with svc.transaction() as session:
        await require_user(request, session, form)
        await accounts.end_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, svc)
    return response


async def invite(request: Request) -> Response:
    svc = services(request)
    token = request.path_params["token"]
    if request.method == "POST":
        require_same_site(request, svc.settings)
    form: FormData | None = await read_form(request) if request.method == "POST" else None
    async with svc.db() as session:
        who = await principal(request, session) if request.cookies.get(SESSION_COOKIE) else None
        found, community = await communities.find_invite(session, token)
    context: dict[str, Any] = {"community": community, "role": found.role, "token": token,
                               "form": form or {}}
    if form is None:
        return render(request, "invite.html", context, who=who)
    try:
        async with svc.transaction() as session:
            user, grant = await joining_user(request, svc, session, form)
            await communities.accept_invite(session, token, user)
    except ApiError as exc:
        return render(request, "invite.html", {**context, "error": exc},
                      who=who, status=exc.status)
    response = RedirectResponse(f"/c/{community.slug}", status_code=303)
    if grant:
        set_session_cookie(response, svc, grant.token)
    return response


async def setup(request: Request) -> Response:
    """The first owner's one-time page: account plus first community."""
    svc = services(request)
    token = request.path_params["token"]
    if request.method == "GET":
        async with svc.db() as session:
            await accounts.find_setup_token(session, token)
        return render(request, "setup.html", {"form": {}})
    require_same_site(request, svc.settings)
    form = await read_form(request)
    try:
        async with svc.transaction() as session:
            await accounts.claim_setup_token(session, token)
            user, grant = await accounts.sign_up(session, form, svc.settings.session_hours,
                                                 is_admin=True)
            community = await communities.create_community(
                session, name=form.get("community"), slug=None, owner=user,
                language=svc.settings.language, time_zone=svc.settings.time_zone)
    except ApiError as exc:
        if exc.status in (404, 410):
            raise
        return render(request, "setup.html", {"form": form, "error": exc},
                      status=exc.status)
    response = RedirectResponse(f"/c/{community.slug}/admin", status_code=303)
    set_session_cookie(response, svc, grant.token)
    return response


# --- communities ------------------------------------------------------------------------

@page
async def create_community(request: Request) -> Response:
    svc = services(request)
    form = await read_form(request)
    async with svc.transaction() as session:
        who = await require_admin(request, session, form)
        community = await communities.create_community(
            session, name=form.get("name"), slug=form.get("slug") or None, owner=who.user,
            language=svc.settings.language, time_zone=svc.settings.time_zone)
    return RedirectResponse(f"/c/{community.slug}/admin", status_code=303)


async def community_page(request: Request, who: Principal, *, status: int = 200,
                         **extra: Any) -> Response:
    svc = services(request)
    async with svc.db() as session:
        access = await communities.require(session, who.user, request.path_params["slug"],
                                           Permission.view)
        members = await communities.members(session, access.community)
        speech = speech_for(request, user=who.user, community=access.community)
        release = await communities.current_release(session, access.community, speech.language)
        open_prompts = await prompts.open_prompts(session, access.community)
        sessions = await live.of_community(session, access)
        can_moderate = allows(access.role, Permission.moderate)
        # members see the replays; moderators every ended session (and its highlights)
        ended = [s for s in await live.past(session, access)
                 if can_moderate or s.recording_state == RecordingState.ready]
        public = await reels.published(session, access.community.id, limit=12)
    signed = links(svc)
    replays = {s.id: signed.rendition(live_rendition(s.id)) for s in ended
               if s.recording_state == RecordingState.ready}
    return render(request, "community.html", {
        "community": access.community, "role": access.role, "members": members,
        "release": release, "prompts": open_prompts, "sessions": sessions,
        "ended": ended, "replays": replays, "reels": public,
        "can_host": allows(access.role, Permission.host_sessions),
        "can_manage": allows(access.role, Permission.manage_members),
        "can_prompt": allows(access.role, Permission.manage_prompts),
        "can_share": allows(access.role, Permission.share_story),
        "can_moderate": allows(access.role, Permission.moderate), **extra,
    }, who=who, status=status)


@page
async def community_home(request: Request) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
    return await community_page(request, who)


async def admin_page(request: Request, who: Principal, *, status: int = 200,
                      **extra: Any) -> Response:
    svc = services(request)
    async with svc.db() as session:
        access = await communities.require(session, who.user, request.path_params["slug"],
                                           Permission.manage_members)
        members = await communities.members(session, access.community)
        invites = await communities.open_invites(session, access.community)
        releases = await communities.current_releases(session, access.community)
        numbers = await lifecycle.numbers(session, access.community)
        failing = [e for e in await webhooks.of_community(session, access)
                   if e.disabled_reason == "failing"]
    return render(request, "admin.html", {
        "numbers": numbers, "failing_endpoints": failing,
        "community": access.community, "members": members, "invites": invites,
        "releases": releases, "roles": list(Role), "invite_days": svc.settings.invite_days,
        "languages": list(i18n.LANGUAGE_NAMES.items()), "language_names": i18n.LANGUAGE_NAMES,
        "zones": i18n.zone_choices(), **extra}, who=who, status=status)


# What a form made that is shown once (a new invite or reset link) waits here for the page
# the form redirects to, so a refresh of that page shows it again and never repeats the POST.
SHOWN_SECONDS = 600
SHOWN_PREFIX = "kumpul:shown:"


async def keep_shown(svc: Services, who: Principal, slug: str, shown: dict[str, Any]) -> str:
    key = security.new_token()
    await svc.redis.set(SHOWN_PREFIX + key, json.dumps({"user": who.user.id, "slug": slug,
                                                        "shown": shown}), ex=SHOWN_SECONDS)
    return key


async def kept_shown(svc: Services, who: Principal, slug: str, key: str) -> dict[str, Any]:
    """What `keep_shown` kept for this person on this page; nothing for anyone else."""
    raw = await svc.redis.get(SHOWN_PREFIX + key) if key else None
    kept = json.loads(raw) if raw else {}
    if kept.get("user") != who.user.id or kept.get("slug") != slug:
        return {}
    shown: dict[str, Any] = kept["shown"]
    return shown


@page
async def admin(request: Request) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
    shown = await kept_shown(svc, who, request.path_params["slug"],
                             request.query_params.get("shown", ""))
    return await admin_page(request, who, **shown)


# An action answers None (back to the page) or what the page shows once (a new link)
AdminAction = Callable[[AsyncSession, communities.Access, FormData, Request],
                       Awaitable[dict[str, Any] | None]]


def admin_action(action: AdminAction) -> Handler:
    """POST handler: check the owner, run the action in one transaction, then redirect to the
    page (post/redirect/get: a refresh never repeats the action)."""
    @page
    async def handler(request: Request) -> Response:
        svc = services(request)
        form = await read_form(request)
        async with svc.db() as session:
            who = await require_user(request, session, form)
        try:
            async with svc.transaction() as session:
                access = await communities.require(
                    session, who.user, request.path_params["slug"], Permission.manage_members)
                made = await action(session, access, form, request)
        except ApiError as exc:
            if exc.status == 404 and exc.code == "community_not_found":
                raise
            return await admin_page(request, who, status=exc.status, error=exc)
        slug = request.path_params["slug"]
        if made:
            key = await keep_shown(svc, who, slug, made)
            return RedirectResponse(f"/c/{slug}/admin?shown={key}", status_code=303)
        return RedirectResponse(f"/c/{slug}/admin", status_code=303)

    handler.__name__ = action.__name__
    return handler


async def _invite(session: AsyncSession, access: communities.Access, form: FormData,
                  request: Request) -> dict[str, Any]:
    settings = services(request).settings
    token, made = await communities.create_invite(
        session, access, role=form.get("role", "member"), max_uses=form.get("max_uses", 1),
        days=form.get("days", settings.invite_days), note=form.get("note", ""))
    url = f"{settings.public_url}/invite/{token}"
    if str(form.get("email") or "").strip():
        await notifications.mail_invite(session, access, made, form.get("email"), url, settings)
    return {"new_invite_url": url, "new_invite_role": made.role,
            "new_invite_uses": made.max_uses}


async def _revoke(session: AsyncSession, access: communities.Access, form: FormData,
                  request: Request) -> None:
    await communities.revoke_invite(session, access,
                                    int_param(request.path_params["invite_id"], "invite_id"))


async def _role(session: AsyncSession, access: communities.Access, form: FormData,
                request: Request) -> None:
    await communities.change_role(session, access,
                                  int_param(request.path_params["user_id"], "user_id"),
                                  form.get("role"))


async def _remove(session: AsyncSession, access: communities.Access, form: FormData,
                  request: Request) -> None:
    await communities.remove_member(session, access,
                                    int_param(request.path_params["user_id"], "user_id"))


async def _release(session: AsyncSession, access: communities.Access, form: FormData,
                   request: Request) -> None:
    await communities.publish_release(session, access.community, form.get("body"), access.user,
                                      form.get("language"))


async def _settings(session: AsyncSession, access: communities.Access, form: FormData,
                    request: Request) -> None:
    await communities.change_settings(session, access, language=form.get("language"),
                                      time_zone=form.get("time_zone"))


# --- the person's own language and time zone -----------------------------------------------

def _account_page(request: Request, who: Principal, *, status: int = 200,
                  **extra: Any) -> Response:
    return render(request, "account.html", {
        "languages": list(i18n.LANGUAGE_NAMES.items()), "zones": i18n.zone_choices(),
        "now": utcnow(), **extra}, who=who, status=status)


@page
async def account(request: Request) -> Response:
    svc = services(request)
    async with svc.db() as session:
        who = await require_user(request, session)
        choices = await notifications.choices(session, who.user)
        feed = await calendar.feed_url(session, who.user, svc.settings.public_url,
                                       svc.settings.secret_key)
    return _account_page(request, who, choices=choices, kinds=notices.CHOOSABLE,
                         channels=notices.CHANNEL_LABELS, feed_url=feed)


@page
async def account_save(request: Request) -> Response:
    svc = services(request)
    form = await read_form(request)
    try:
        async with svc.transaction() as session:
            who = await require_user(request, session, form)
            accounts.change_place(who.user, language=form.get("language"),
                                  time_zone=form.get("time_zone"))
    except ApiError as exc:
        if exc.status in (401, 403):
            raise
        async with svc.db() as session:  # the failed transaction's rows are gone
            who = await require_user(request, session)
            return _account_page(request, who, status=exc.status, error=exc)
    return RedirectResponse("/account?saved=1", status_code=303)


routes = [
    Route("/", home, methods=["GET"], include_in_schema=False),
    Route("/login", login_form, methods=["GET"], include_in_schema=False),
    Route("/login", login_submit, methods=["POST"], include_in_schema=False),
    Route("/logout", logout, methods=["POST"], include_in_schema=False),
    Route("/invite/{token}", invite, methods=["GET", "POST"], include_in_schema=False),
    Route("/setup/{token}", setup, methods=["GET", "POST"], include_in_schema=False),
    Route("/communities", create_community, methods=["POST"], include_in_schema=False),
    Route("/c/{slug}", community_home, methods=["GET"], include_in_schema=False),
    Route("/c/{slug}/admin", admin, methods=["GET"], include_in_schema=False),
    Route("/c/{slug}/admin/invites", admin_action(_invite), methods=["POST"],
          include_in_schema=False),
    Route("/c/{slug}/admin/invites/{invite_id}/revoke", admin_action(_revoke), methods=["POST"],
          include_in_schema=False),
    Route("/c/{slug}/admin/members/{user_id}/role", admin_action(_role), methods=["POST"],
          include_in_schema=False),
    Route("/c/{slug}/admin/members/{user_id}/remove", admin_action(_remove), methods=["POST"],
          include_in_schema=False),
    Route("/c/{slug}/admin/release", admin_action(_release), methods=["POST"],
          include_in_schema=False),
    Route("/c/{slug}/admin/settings", admin_action(_settings), methods=["POST"],
          include_in_schema=False),
    Route("/account", account, methods=["GET"], include_in_schema=False),
    Route("/account", account_save, methods=["POST"], include_in_schema=False),
]
