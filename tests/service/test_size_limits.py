"""Size limits everywhere a client sends something, against a real server process: the
request line and headers (refused while they arrive), Upload-Metadata (size and keys), and
uploads started per member per hour."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import httpx2 as httpx
import pytest

from service.settings import Settings
from tests.conftest import ServerProcess, make_settings
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
                         KUMPUL_MAX_HEADER_BYTES="8192", KUMPUL_UPLOADS_PER_HOUR="3")


def raw_request(server: ServerProcess, head: bytes) -> bytes:
    """Send `head` as a request's head over a socket; what the server answers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # refused before we finished sending is what we want
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def test_oversized_heads_are_refused_as_they_arrive(server_process: ServerProcess) -> None:
    """A 1 MB header, a 20 kB URL and 200 small headers: each a 431 in the error shape; the
    server answers normally afterwards."""
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    long_url = b"GET /healthz?" + b"q" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (n, b"v" * 40) for n in range(200)) + b"\r\n"
    for head in (big, long_url, many):
        answer = raw_request(server_process, head)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b'"code": "headers_too_large"' in answer
    fine = raw_request(server_process, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                       b"Connection: close\r\nX-Ok: " + b"a" * 4000 + b"\r\n\r\n")
    assert fine.startswith(b"HTTP/1.1 200 ")


def test_upload_metadata_and_uploads_per_hour_are_limited(
        server_process: ServerProcess) -> None:
    who = member_of_new_community(server_process)
    auth = {"Authorization": f"Bearer {who.token}"}

    def start(meta: str) -> httpx.Response:
        return httpx.post(f"{server_process.url}/api/uploads", timeout=30, headers={
            **auth, **tus(**{"Upload-Length": "100", "Upload-Metadata": meta})})

    base = {"community": who.slug, "release": 1, "filename": "a.mp4"}
    many_keys = start(metadata(**base, **{f"k{n}": "v" for n in range(20)}))
    long_value = start(metadata(**base, title="t" * 4000))
    for refused in (many_keys, long_value):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "metadata_too_large"
    assert [start(metadata(**base)).status_code for _ in range(4)] == [201, 201, 201, 429]
    refused = start(metadata(**base))
    assert refused.json()["error"]["code"] == "too_many_uploads"
    assert int(refused.headers["retry-after"]) > 3000
