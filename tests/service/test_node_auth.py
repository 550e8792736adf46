"""Requests between nodes are signed: an HMAC of the app's secret over the method, the path,
a timestamp within 30 s and the body's SHA-256 (`service/cluster/auth.py`)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from service.cluster import auth
from service.settings import Settings

SECRET = "a-secret-that-is-long-enough-for-the-app-0123456789"
NOW = 1_800_000_000.0


def test_a_signature_holds_for_exactly_its_request() -> None:
    signed = auth.sign(SECRET, "POST", "/api/live/s/whep", b"v=0", now=NOW)
    assert auth.verify(SECRET, "POST", "/api/live/s/whep", b"v=0", signed, now=NOW + 29)
    assert not auth.verify(SECRET, "DELETE", "/api/live/s/whep", b"v=0", signed, now=NOW)
    assert not auth.verify(SECRET, "POST", "/api/live/t/whep", b"v=0", signed, now=NOW)
    assert not auth.verify(SECRET, "POST", "/api/live/s/whep", b"v=1", signed, now=NOW)
    assert not auth.verify(SECRET + "x", "POST", "/api/live/s/whep", b"v=0", signed, now=NOW)


def test_old_future_and_malformed_signatures_are_refused() -> None:
    signed = auth.sign(SECRET, "GET", "/p", now=NOW)
    assert not auth.verify(SECRET, "GET", "/p", b"", signed, now=NOW + 31)
    assert not auth.verify(SECRET, "GET", "/p", b"", signed, now=NOW - 31)
    stamp, _, mac = signed.partition(":")
    for bad in (None, "", "nonsense", f"x:{mac}", f"{int(stamp) + 1}:{mac}", f"{stamp}:"):
        assert not auth.verify(SECRET, "GET", "/p", b"", bad, now=NOW)


def test_the_relay_refuses_anyone_but_a_node(client: TestClient, settings: Settings) -> None:
    """A room's relay opens only for a signed node request (4401 otherwise), and only on
    the room's origin (4404 here: no such room)."""
    path = "/api/live/nope/relay"
    signed = auth.sign(settings.secret_key, "GET", path)
    for headers, closed in (({}, 4401), ({auth.HEADER: "1:forged"}, 4401),
                            ({auth.HEADER: signed}, 4404)):
        with pytest.raises(WebSocketDisconnect) as refused, \
                client.websocket_connect(path, headers=headers) as ws:
            ws.receive_bytes()
        assert refused.value.code == closed, headers
