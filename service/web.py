"""What every handler needs: the app's services, parsed input, and who is asking."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from service.db.models import User, WebSession
from service.domain import accounts, communities
from service.domain.communities import Access
from service.domain.roles import Permission
from service.errors import BadRequest, Forbidden, Unauthorized, UnsupportedMediaType
from service.live.rooms import Rooms
from service.metrics import Metrics
from service.queue import Queues
from service.ratelimit import RateLimiter
from service.settings import Settings
from service.storage import ObjectStore
from service.uploads.locks import Heartbeat
from service.uploads.sink import Sink

SESSION_COOKIE = "kumpul_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Services:
    """Everything the lifespan opened, handed to handlers through `request.state`."""

    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    redis: Redis
    queues: Queues
    store: ObjectStore
    metrics: Metrics
    limiter: RateLimiter
    templates: Jinja2Templates
    upload_sink: Sink
    heartbeat: Heartbeat
    rooms: Rooms


def services(request: Request) -> Services:
    found = request.state.services
    assert isinstance(found, Services)
    return found


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a specific 400/415."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaType("Send the body as JSON.", code="json_required",
                                   hint="Set Content-Type: application/json.")
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON ({exc}).", code="malformed_json") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", code="malformed_json")
    check_text(data)
    return data


def storable(text: str) -> bool:
    """Text a database can keep: no NUL character, no lone UTF-16 surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: object) -> None:
    """Every string in a request's data (keys too) is storable, or a specific 400."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and not storable(item):
            raise BadRequest("Text may not contain NUL characters or broken Unicode.",
                             code="invalid_text", hint="Remove the control characters.")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def int_param(raw: str, name: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > 2**31 - 1:
        raise BadRequest(f"{name} must be a positive whole number (at most 2147483647).",
                         code="invalid_parameter")
    return int(raw)


@dataclass(frozen=True)
class Principal:
    user: User
    via: str                      # "cookie" or "token"
    web_session: WebSession | None = None

    @property
    def csrf_token(self) -> str | None:
        return self.web_session.csrf_token if self.web_session else None


async def principal(request: Request, session: AsyncSession) -> Principal | None:
    """Who is asking: a Bearer token wins over the session cookie."""
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer <token>'.", code="invalid_token")
        return Principal(await accounts.token_user(session, token.strip()), "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    user, row = await accounts.session_user(session, cookie)
    return Principal(user, "cookie", row)


async def require_user(request: Request, session: AsyncSession,
                       form: Mapping[str, Any] | None = None) -> Principal:
    """The signed-in user, with CSRF checked on cookie-authenticated state changes."""
    who = await principal(request, session)
    if who is None:
        raise Unauthorized("You are not logged in.", hint="Log in and try again.")
    if who.via == "cookie" and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token") or (form or {}).get("csrf_token")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, who.csrf_token or ""):
            raise Forbidden("The form or request is missing its security token.",
                            code="csrf_failed",
                            hint="Reload the page and try again.")
    return who


async def member_access(request: Request, session: AsyncSession, permission: Permission,
                        form: Mapping[str, Any] | None = None) -> Access:
    """The signed-in user's standing in the community named by the path's `slug`."""
    who = await require_user(request, session, form)
    return await communities.require(session, who.user, request.path_params["slug"], permission)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
