"""CORS for integrators: browsers on the origins of `KUMPUL_CORS_ORIGINS` may call the tus,
WHIP and WHEP endpoints (and nothing else); with the setting empty, same origin only.

Cross-origin callers authenticate with a personal token (`Authorization: Bearer`), never
the session cookie: no `Access-Control-Allow-Credentials`, so another site can't act with a
member's login. A preflight from a listed origin is answered here; from any other origin it
reaches the endpoint's own OPTIONS (tus discovery, WHIP/WHEP `Allow`) without CORS headers,
and the browser refuses. Answers to listed origins, errors included, expose the headers
clients read: `Location`, `Link`, `ETag`, the tus `Upload-*` and `Tus-*`, `Retry-After`.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PATHS = re.compile(r"^/api/(uploads(/[^/]+)?|live/[^/]+/(whip|whep)(/[^/]+)?)$")
ALLOW_METHODS = "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = ", ".join((
    "Authorization", "Content-Type", "If-Match", "X-Request-ID", "X-Requested-With",
    "Tus-Resumable", "Upload-Length", "Upload-Metadata", "Upload-Offset", "Upload-Checksum",
    "Upload-Defer-Length", "Upload-Concat"))
EXPOSE_HEADERS = ", ".join((
    "Location", "Link", "ETag", "Accept-Patch", "Accept-Post", "Allow", "Retry-After",
    "X-Request-ID", "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata",
    "Upload-Defer-Length", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
    "Tus-Checksum-Algorithm"))
MAX_AGE = "600"


class Cors:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin", "")
        if origin not in self.origins:
            await self.app(scope, receive, self._vary(send, None))
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await send({"type": "http.response.start", "status": 204, "headers": [
                (b"access-control-allow-origin", origin.encode()),
                (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", MAX_AGE.encode()),
                (b"vary", b"Origin, Access-Control-Request-Method, "
                          b"Access-Control-Request-Headers")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, self._vary(send, origin))

    @staticmethod
    def _vary(send: Send, origin: str | None) -> Send:
        """Answers vary by Origin (caches must not hand one site's answer to another); a
        listed origin's answer also carries Allow-Origin and the exposed headers."""
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.append((b"vary", b"Origin"))
                if origin is not None:
                    headers.append((b"access-control-allow-origin", origin.encode()))
                    headers.append((b"access-control-expose-headers", EXPOSE_HEADERS.encode()))
            await send(message)

        return sending
