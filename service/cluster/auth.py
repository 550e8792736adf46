"""Requests between nodes, authenticated: an HMAC of the app's secret over the method, the
path, a timestamp and the body's SHA-256, in the header `Kumpul-Node-Auth`.

A node that forwards a WHIP or WHEP offer (or opens a room's relay) signs the request; the
node that takes it checks the signature and that the timestamp is within
`WINDOW_SECONDS` of its own clock, and only then acts on it as a node's request (a client
cannot send such a header: it does not know the secret).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Kumpul-Node-Auth"
WINDOW_SECONDS = 30.0
_PURPOSE = b"kumpul-node-auth-v1"


def _key(secret: str) -> bytes:
    """A key of its own for node requests, derived from the app's secret."""
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _mac(secret: str, method: str, path: str, stamp: int, body: bytes) -> str:
    text = "\n".join((method.upper(), path, str(stamp), hashlib.sha256(body).hexdigest()))
    return hmac.new(_key(secret), text.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, method: str, path: str, body: bytes = b"",
         now: float | None = None) -> str:
    """The header's value for a request: `{unix time}:{hex HMAC-SHA256}`."""
    stamp = int(time.time() if now is None else now)
    return f"{stamp}:{_mac(secret, method, path, stamp, body)}"


def verify(secret: str, method: str, path: str, body: bytes, value: str | None,
           now: float | None = None) -> bool:
    """Whether `value` signs this request, made within the last `WINDOW_SECONDS`."""
    if not value or ":" not in value:
        return False
    raw_stamp, _, mac = value.partition(":")
    try:
        stamp = int(raw_stamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > WINDOW_SECONDS:
        return False
    return hmac.compare_digest(mac, _mac(secret, method, path, stamp, body))
