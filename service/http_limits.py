"""The HTTP protocol the web app runs on: uvicorn's httptools protocol, refusing a request
whose request line and headers pass a size limit (431) while they arrive, before they are
kept whole in memory. (httptools itself has no limit: a 50 MB header was taken.)"""

from __future__ import annotations

import json
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadTooLarge(Exception):
    """The request line and headers are over the limit."""


def limited_protocol(max_head_bytes: int) -> type[HttpToolsProtocol]:
    """A protocol class for `uvicorn.run(http=...)` with the limit given."""

    class LimitedHttpTools(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.head_bytes = 0
            self.refused = False

        def on_message_begin(self) -> None:
            self.head_bytes = 0
            super().on_message_begin()

        def _count(self, size: int) -> None:
            self.head_bytes += size
            if self.head_bytes > max_head_bytes:
                raise HeadTooLarge

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def data_received(self, data: bytes) -> None:
            if self.refused:
                return
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:  # as uvicorn does: WebSockets
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, HeadTooLarge) or self.head_bytes > max_head_bytes:
                    self.refused = True
                    self._send_431()
                    return
                self.send_400_response("Invalid HTTP request received.")

        def _send_431(self) -> None:
            body = json.dumps({"error": {
                "code": "headers_too_large",
                "message": f"The request's headers are over {max_head_bytes} bytes.",
                "hint": "Send fewer or shorter headers (cookies included)."}}).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n".encode()
                + b"connection: close\r\n\r\n" + body)
            self.transport.close()

    return LimitedHttpTools
