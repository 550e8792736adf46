"""CORS for integrators, header by header: preflights of listed origins for tus, WHIP and
WHEP; answers (errors too) that expose what clients read; nothing for other origins, other
paths or cookies; WHIP and WHEP answer OPTIONS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings

BRAND = "https://brand.example"


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.replace(cors_origins=(BRAND,)))) as made:
        yield made


def preflight(client: TestClient, path: str, origin: str, method: str = "POST",
              headers: str = "authorization,tus-resumable,upload-length,upload-metadata"
              ) -> dict[str, str]:
    answer = client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})
    assert answer.status_code == 204, answer.text
    return dict(answer.headers)


@pytest.mark.parametrize(("path", "method"), [
    ("/api/uploads", "POST"), ("/api/uploads/abc", "PATCH"), ("/api/uploads/abc", "HEAD"),
    ("/api/live/s1/whip", "POST"), ("/api/live/s1/whep", "POST"),
    ("/api/live/s1/whip/r1", "DELETE"), ("/api/live/s1/whep/r1", "PATCH")])
def test_listed_origins_pass_preflight(cors_client: TestClient, path: str, method: str) -> None:
    got = preflight(cors_client, path, BRAND, method)
    assert got["access-control-allow-origin"] == BRAND
    assert method in got["access-control-allow-methods"]
    allowed = got["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "tus-resumable", "upload-offset",
                   "upload-length", "upload-metadata", "upload-checksum", "if-match"):
        assert header in allowed
    assert "access-control-allow-credentials" not in got  # tokens, never the cookie
    assert "Origin" in got["vary"]


def test_other_origins_get_the_endpoint_without_cors(cors_client: TestClient) -> None:
    """tus discovery still answers (tus clients need it), but without Allow-Origin the
    browser refuses the cross-origin call."""
    got = preflight(cors_client, "/api/uploads", "https://evil.example")
    assert "access-control-allow-origin" not in got
    assert got["tus-version"] == "1.0.0"
    assert "Origin" in got["vary"]


def test_answers_and_errors_expose_what_clients_read(cors_client: TestClient) -> None:
    answer = cors_client.post("/api/uploads", headers={
        "Origin": BRAND, "Tus-Resumable": "1.0.0", "Upload-Length": "10"})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "not_authenticated"
    assert answer.headers["access-control-allow-origin"] == BRAND
    exposed = answer.headers["access-control-expose-headers"].split(", ")
    for header in ("Location", "Link", "ETag", "Upload-Offset", "Upload-Length",
                   "Upload-Expires", "Tus-Resumable", "Tus-Version", "Tus-Max-Size",
                   "Retry-After"):
        assert header in exposed


def test_only_the_integration_endpoints_are_shared(cors_client: TestClient) -> None:
    for path in ("/api/communities", "/api/auth/login", "/api/tokens", "/"):
        answer = cors_client.options(path, headers={
            "Origin": BRAND, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in answer.headers, path
        got = cors_client.get(path, headers={"Origin": BRAND})
        assert "access-control-allow-origin" not in got.headers, path


def test_empty_setting_means_same_origin_only(client: TestClient) -> None:
    got = preflight(client, "/api/live/s1/whep", BRAND)
    assert "access-control-allow-origin" not in got


@pytest.mark.parametrize(("path", "allow"), [
    ("/api/live/s1/whip", "OPTIONS, POST"), ("/api/live/s1/whep", "OPTIONS, POST"),
    ("/api/live/s1/whip/r1", "OPTIONS, DELETE"), ("/api/live/s1/whep/r1", "OPTIONS, DELETE")])
def test_whip_and_whep_answer_options(client: TestClient, path: str, allow: str) -> None:
    """RFC 9725: OPTIONS is answered (it was 405)."""
    answer = client.options(path)
    assert answer.status_code == 204
    assert answer.headers["allow"] == allow
    if allow.endswith("POST"):
        assert answer.headers["accept-post"] == "application/sdp"


@pytest.mark.parametrize("raw", ["brand.example", "https://brand.example/path",
                                 "ftp://brand.example", "https://user@brand.example"])
def test_bad_origins_are_refused_at_start(tmp_path: Path, raw: str) -> None:
    from service.settings import SettingsError
    from tests.conftest import make_settings

    with pytest.raises(SettingsError, match="KUMPUL_CORS_ORIGINS"):
        make_settings(tmp_path, KUMPUL_CORS_ORIGINS=raw)
    assert make_settings(tmp_path, KUMPUL_CORS_ORIGINS="https://a.example, http://b.example:8080/"
                         ).cors_origins == ("https://a.example", "http://b.example:8080")
