"""ASGI middleware: request ids, access logs and metrics, and the request body limit."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.logs import request_id
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("kumpul.http")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)
_RID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
NO_STORE = (b"cache-control", b"no-store")


def content_security_policy(settings: Settings, frame_ancestors: str = "'none'") -> str:
    """Scripts and styles from Kumpul only; media and images from Kumpul and, with S3, the
    storage server its signed links point at; framing as `frame_ancestors` says."""
    media = "'self' blob:"
    if settings.storage == "s3":
        media += f" {'https' if settings.s3_secure else 'http'}://{settings.s3_endpoint}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src {media} data:; media-src {media}; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; "
            f"frame-ancestors {frame_ancestors}")


def _credentialed(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization" or (name == b"cookie" and b"kumpul_session=" in value):
            return True
    return False


def _route_template(scope: Scope) -> str:
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "?"))
    return "unmatched"


class RequestContext:
    """Gives each request an id (kept if the client sent a sane one), logs it, counts it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, csp: str = "") -> None:
        self.app = app
        self.metrics = metrics
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = sent if _RID.match(sent) else uuid.uuid4().hex
        token = request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = time.perf_counter()
        private = _credentialed(scope) or scope["path"] == "/api/me"

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                if any(name.lower() == b"content-security-policy" and b"frame-ancestors" in value
                       for name, value in headers):
                    present.add(b"x-frame-options")  # the page states who may frame it
                headers.append((b"x-request-id", rid.encode()))
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if self.csp and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", self.csp))
                if private and b"cache-control" not in present:  # signed-in answers
                    headers.append(NO_STORE)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
                await JSONResponse({"error": {
                    "code": "invalid_text", "message": "The address may not contain NUL.",
                    "hint": "Remove %00 from the address."}}, status_code=400)(
                    scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            log.info("request", extra={"request_id": rid, "method": scope["method"],
                                       "path": scope["path"], "status": status,
                                       "ms": round(elapsed * 1000, 1)})
            request_id.reset(token)


class BodyLimit:
    """Refuse request bodies over the limit, by Content-Length or as they stream.

    Paths starting with one of `exempt` (resumable uploads) or ending with one of
    `exempt_suffixes` (moderators' asset files) enforce their own, larger limits.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: tuple[str, ...] = (),
                 exempt_suffixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt
        self.exempt_suffixes = exempt_suffixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt) \
                or scope["path"].endswith(self.exempt_suffixes):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # chunked or lying client: the app's handlers answer
                    raise self._error()
            return message

        await self.app(scope, limited_receive, send)

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge("Request bodies are limited to %(max_bytes)s.",
                               max_bytes=self.max_bytes,
                               hint="Send less data; videos go through the resumable upload "
                                    "endpoint.")

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(self._error().body()).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
