"""What every handler needs: the app's services, parsed input, and who is asking."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from redis.asyncio import Redis
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket

from service import effects, i18n
from service.cluster.nodes import Nodes
from service.db.models import Community, User, WebSession, utcnow
from service.domain import accounts, communities, notifications
from service.domain.communities import Access
from service.domain.paging import DEFAULT_LIMIT, MOST, Page
from service.domain.roles import Permission
from service.errors import BadRequest, Forbidden, Unauthorized, UnsupportedMediaType
from service.live.channels import Channels
from service.live.rooms import Rooms
from service.live.spread import Spread
from service.locks import Heartbeat
from service.mail import Transport
from service.metrics import Metrics
from service.queue import Queues
from service.ratelimit import RateLimiter
from service.settings import Settings
from service.storage import ObjectStore
from service.storage.uploads import Sink

log = logging.getLogger("kumpul.web")

SESSION_COOKIE = "kumpul_session"
MAX_JSON_DEPTH = 32  # deeper nesting is refused before parsing (no RecursionError)
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
    channels: Channels
    mailer: Transport
    nodes: Nodes
    spread: Spread  # this node's rooms in the cluster (origins, edges, counts)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: a transaction, then the jobs and events its changes caused
        (`service.effects`), carried out only once it has committed."""
        async with self.db.begin() as session:
            yield session
            caused = effects.take(session)
        if caused:
            await anyio.to_thread.run_sync(effects.carry_out, caused, self.queues)


def services(request: Request | WebSocket) -> Services:
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
    check_depth(raw)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest("The body is not valid JSON (%(detail)s).", code="malformed_json",
                         detail=str(exc)) from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", code="malformed_json")
    check_text(data)
    return data


def json_depth(raw: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not
    count), read without parsing it."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return raw.count(b"[") + raw.count(b"{")  # an upper bound, cheaply
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def check_depth(raw: bytes) -> None:
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise BadRequest("The JSON nests deeper than %(levels)s levels.",
                         code="json_too_deep", hint="Send flatter JSON.", levels=MAX_JSON_DEPTH)


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


def page_of(request: Request) -> Page:
    """The page a list request asks for: `limit` (1-200, default 50) rows from `offset`; the
    answer's `next_offset` (null on the last page) says where the next one starts."""
    q = request.query_params
    limit = int_param(q["limit"], "limit") if q.get("limit") else DEFAULT_LIMIT
    offset = int_param(q["offset"], "offset") if q.get("offset") else 0
    if not 1 <= limit <= MOST:
        raise BadRequest("limit must be between 1 and %(most)s.", code="invalid_parameter",
                         most=MOST)
    return Page(limit, offset)


def int_param(raw: str, name: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > 2**31 - 1:
        raise BadRequest("%(name)s must be a positive whole number (at most 2147483647).",
                         code="invalid_parameter", name=name)
    return int(raw)


@dataclass(frozen=True)
class Principal:
    user: User
    via: str                      # "cookie" or "token"
    web_session: WebSession | None = None
    unread: int = 0               # unread notices (the bell), counted for pages only

    @property
    def csrf_token(self) -> str | None:
        return self.web_session.csrf_token if self.web_session else None


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if that is what was sent."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def principal(request: Request, session: AsyncSession) -> Principal | None:
    """Who is asking: a Bearer token wins over the session cookie."""
    if request.headers.get("authorization"):
        token = bearer(request)
        if token is None:
            raise Unauthorized("Use 'Authorization: Bearer <token>'.", code="invalid_token")
        user, used = await accounts.token_user(session, token)
        if accounts.token_use_due(used, utcnow()):
            await _stamp_token_use(request, used.id)
        speech_for(request, user=user)
        return Principal(user, "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    user, row = await accounts.session_user(session, cookie)
    speech_for(request, user=user)
    unread = 0
    if request.scope.get("type") == "http" and not request.url.path.startswith("/api/"):
        unread = await notifications.unread(session, user.id)  # the bell on every page
    return Principal(user, "cookie", row, unread)


async def _stamp_token_use(request: Request, token_id: int) -> None:
    """A token's last use, in a short transaction of its own: committed whether or not the
    request's own session commits (reads never do), and never holding the database's
    write lock across the request's work (on SQLite, one writer for every node). Best
    effort: a database too busy to take it now leaves it to the token's next use."""
    try:
        async with services(request).db.begin() as session:
            await accounts.stamp_token_use(session, token_id, utcnow())
    except OperationalError as exc:
        log.warning("a token's last use was not recorded", extra={"error": str(exc)[:200]})


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


async def require_admin(request: Request, session: AsyncSession,
                        form: Mapping[str, Any] | None = None) -> Principal:
    """The signed-in user, if they are a site admin."""
    who = await require_user(request, session, form)
    if not who.user.is_admin:
        raise Forbidden("Only site admins can do this.", code="admin_only")
    return who


async def member_access(request: Request, session: AsyncSession, permission: Permission,
                        form: Mapping[str, Any] | None = None) -> Access:
    """The signed-in user's standing in the community named by the path's `slug`."""
    who = await require_user(request, session, form)
    access = await communities.require(session, who.user, request.path_params["slug"],
                                       permission)
    speech_for(request, user=who.user, community=access.community)
    return access


def speech_for(request: Request | WebSocket, *, user: User | None = None,
               community: Community | None = None, public: bool = False) -> i18n.Speech:
    """The language and time zone to answer in, made current for this request.

    Language: the person's own choice, else the community's (on its pages), else what the
    browser asks for, else the site's. Public reel pages speak the community's language.
    Time zone: the person's own, else the community's, else the site's."""
    settings = services(request).settings
    accept = request.headers.get("accept-language")
    if public and community is not None:
        language, zone = community.language, community.time_zone
    else:
        language = (user.language if user and i18n.is_language(user.language) else None) \
            or (community.language if community is not None else None) \
            or i18n.negotiate(accept, settings.language)
        zone = (user.time_zone if user and user.time_zone else None) \
            or (community.time_zone if community is not None else None) or settings.time_zone
    speech = i18n.Speech.of(language, zone)
    request.state.speech = speech
    i18n.use(speech)
    return speech


def require_same_site(request: Request, settings: Settings) -> None:
    """Forms that sign a browser in (login, setup, joining) take posts from Kumpul's own
    pages only: a cross-site form must not sign someone into an account of the attacker's
    (login CSRF). Browsers say where a post comes from in Sec-Fetch-Site, or at least
    Origin; a client that sends neither is not a browser on another site."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    own = {settings.public_url, f"{request.url.scheme}://{request.url.netloc}"}
    if (site is not None and site not in ("same-origin", "none")) or \
            (site is None and origin is not None and origin.rstrip("/") not in own):
        raise Forbidden("This form was sent from another site.", code="cross_site",
                        hint="Open Kumpul's own page and sign in there.")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
