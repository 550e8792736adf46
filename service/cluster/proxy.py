"""A request forwarded to another node, signed as a node's (`auth.py`).

WHIP and WHEP may reach any node; the one that takes the request forwards it to the node
that is to serve it (the room's origin, the viewer's chosen node, the node a resource id
names) and answers with that node's answer. The other node reads the person's own
credentials (their token or cookie) from the forwarded headers and checks them itself; the
node signature only says "this request was routed already: serve it here".

HTTP/1.1 over one connection per request (node to node, on the private network).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.cluster import auth

TIMEOUT_SECONDS = 20.0
CONNECT_SECONDS = 3.0
PASSED_ON = ("authorization", "cookie", "content-type", "x-csrf-token", "accept-language",
             "user-agent", "x-request-id")
ANSWERED = ("content-type", "location", "link", "retry-after", "etag", "allow",
            "accept-post", "content-language")


class Unreachable(ConnectionError):
    """The other node did not answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _dechunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return bytes(out)


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise Unreachable("the other node's answer is not HTTP") from None
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    found = dict(headers)
    if found.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in found:
        body = body[:int(found["content-length"])]
    return Answer(status, headers, body)


async def send(node_url: str, secret: str, method: str, path: str,
               headers: Mapping[str, str], body: bytes = b"") -> Answer:
    """`method path` on the node at `node_url`, signed; its answer."""
    parts = urlsplit(node_url)
    secure = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, port, ssl=ssl.create_default_context() if secure else None),
            CONNECT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise Unreachable(f"node {node_url} unreachable: {exc}") from None
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close",
             f"Content-Length: {len(body)}",
             f"{auth.HEADER}: {auth.sign(secret, method, path.split('?')[0], body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()
              if name.lower() in PASSED_ON]
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise Unreachable(f"node {node_url} did not answer: {exc}") from None
    finally:
        writer.close()
    return parse(raw)
