"""The login flow shared by the API and the pages: rate limit, verify, open a session."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from service.db.models import User
from service.domain import accounts
from service.errors import Unauthorized
from service.web import SESSION_COOKIE, Services, require_user

SLOWDOWN_STEP = 0.5  # seconds added per failure beyond the limit, for the whole account
SLOWDOWN_MAX = 5.0


async def log_in(svc: Services, session: AsyncSession, email: object, password: object,
                 ip: str) -> tuple[User, accounts.SessionGrant]:
    """Failed logins are limited per address (any accounts) and per (address, account)
    pair, which refuse with 429. Failures for one account from everywhere only slow its
    logins down: a stranger can never lock the real owner out."""
    settings = svc.settings
    account = hashlib.sha256(str(email or "").strip().lower()[:254].encode()).hexdigest()[:32]
    ip_key, pair_key = "login:ip:" + ip, f"login:pair:{ip}:{account}"
    account_key = "login:account:" + account
    message = "Too many failed logins."
    await svc.limiter.check(ip_key, settings.login_address_attempts, message=message)
    await svc.limiter.check(pair_key, settings.login_attempts, message=message)
    failures = await svc.limiter.count(account_key)
    if failures > settings.login_attempts:
        await anyio.sleep(min((failures - settings.login_attempts) * SLOWDOWN_STEP,
                              SLOWDOWN_MAX))
    user = await accounts.authenticate(session, str(email or ""), str(password or ""))
    if user is None:
        for key in (ip_key, pair_key, account_key):
            await svc.limiter.hit(key, settings.login_window_seconds)
        svc.metrics.logins.labels("failed").inc()
        raise Unauthorized("That email and password don't match an account.",
                           code="invalid_credentials",
                           hint="Check both and try again.")
    await svc.limiter.reset(pair_key)
    svc.metrics.logins.labels("ok").inc()
    return user, await accounts.start_session(session, user, settings.session_hours)


def signed_in(request: Request) -> bool:
    """Whether the request claims someone (a Bearer token or the session cookie)."""
    return bool(request.headers.get("authorization") or request.cookies.get(SESSION_COOKIE))


async def joining_user(request: Request, svc: Services, session: AsyncSession,
                       fields: Mapping[str, Any]) -> tuple[User, accounts.SessionGrant | None]:
    """Who joins through an invite: the signed-in user as they are (CSRF checked), or a new
    account made from the sign-up fields and signed in (its grant sets the cookie)."""
    if signed_in(request):
        return (await require_user(request, session, fields)).user, None
    return await accounts.sign_up(session, fields, svc.settings.session_hours)


def set_session_cookie(response: Response, svc: Services, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=svc.settings.session_hours * 3600,
                        httponly=True, samesite="lax", secure=svc.settings.secure_cookies,
                        path="/")


def clear_session_cookie(response: Response, svc: Services) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=svc.settings.secure_cookies)
