"""Headers and exposure, against a real server process: a Content-Security-Policy on every
page (scripts and styles from Kumpul only, media from Kumpul and its signed links, framing
only for the embed), no caching of anything a signed-in person gets (`/api/me` holds the
CSRF token), and `/metrics` and `/readyz`'s details only for operators."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest

from service.settings import Settings
from tests.conftest import ServerProcess, make_settings
from tests.remote import member_of_new_community

TOKEN = "operator-token-for-tests"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
                         KUMPUL_METRICS_TOKEN=TOKEN)


def policy(response: httpx.Response) -> dict[str, str]:
    found = response.headers["content-security-policy"]
    return {part.split()[0]: part.split(" ", 1)[1] for part in found.split("; ")}


def test_pages_carry_a_policy_and_signed_in_answers_are_not_stored(
        server_process: ServerProcess) -> None:
    who = member_of_new_community(server_process)
    auth = {"Authorization": f"Bearer {who.token}"}
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        login = client.get("/login")
        csp = policy(login)
        assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
        assert "'self'" in csp["media-src"] and "'unsafe-inline'" not in str(csp)
        assert "no-store" not in login.headers.get("cache-control", "")
        me = client.get("/api/me", headers=auth)
        assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
        assert client.get("/api/me").headers["cache-control"] == "no-store"  # 401 too
        page = client.get(f"/c/{who.slug}", headers=auth)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert policy(page)["script-src"] == "'self'"
        assert "<script>" not in page.text and " style=" not in page.text


def test_only_operators_see_internals(server_process: ServerProcess) -> None:
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/metrics").status_code == 403
        operator = {"Authorization": f"Bearer {TOKEN}"}
        assert set(client.get("/readyz", headers=operator).json()["checks"]) == {
            "database", "redis", "storage"}
        assert "kumpul_http_requests_total" in client.get("/metrics", headers=operator).text
