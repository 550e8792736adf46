"""One error shape everywhere: {"error": {"code", "message", "hint"?}}."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from tests.conftest import World


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) <= {"code", "message", "hint"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_unknown_route(client: TestClient) -> None:
    """An unknown path gets a 404 in the shared shape, naming the path."""
    error = assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert "/api/nothing-here" in error["message"]


def test_wrong_method(client: TestClient) -> None:
    assert_error(client.delete("/api/auth/login"), 405, "method_not_allowed")


def test_malformed_json(client: TestClient) -> None:
    response = client.post("/api/auth/login", content=b'{"email": ',
                           headers={"content-type": "application/json"})
    assert_error(response, 400, "malformed_json")


def test_json_must_be_an_object(client: TestClient) -> None:
    response = client.post("/api/auth/login", json=["a", "b"])
    assert_error(response, 400, "malformed_json")


def test_json_content_type_required(client: TestClient) -> None:
    response = client.post("/api/auth/login", content=b"email=a",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    error = assert_error(response, 415, "json_required")
    assert "Content-Type" in error["hint"]


def test_oversize_body_by_length(client: TestClient) -> None:
    """A declared body over the limit is refused before it is read."""
    response = client.post("/api/auth/login", content=b"x" * 1_048_577,
                           headers={"content-type": "application/json"})
    assert_error(response, 413, "body_too_large")


def test_oversize_body_streamed(client: TestClient) -> None:
    """A chunked body with no length is cut off once it passes the limit."""
    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65536

    response = client.post("/api/auth/login", content=chunks(),
                           headers={"content-type": "application/json"})
    assert_error(response, 413, "body_too_large")


def test_unauthenticated(client: TestClient) -> None:
    error = assert_error(client.get("/api/me"), 401, "not_authenticated")
    assert error["hint"]


def test_domain_errors_carry_hints(world: World) -> None:
    """Errors raised in the domain reach the client with their code and hint."""
    owner = world.admin()
    slug = world.community(owner)
    response = owner.patch(f"/api/communities/{slug}/members/{owner.user_id}",
                           json={"role": "member"})
    error = assert_error(response, 409, "last_owner")
    assert "owner" in error["hint"]


def test_browsers_get_an_html_error_page(client: TestClient) -> None:
    """People see a page, not JSON, for a missing page."""
    response = client.get("/no/such/page", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Nothing is at /no/such/page" in response.text


def test_request_id_and_security_headers(client: TestClient) -> None:
    """Every response names its request id; a sane client id is kept."""
    response = client.get("/healthz", headers={"x-request-id": "trace-12345678"})
    assert response.headers["x-request-id"] == "trace-12345678"
    assert response.headers["x-content-type-options"] == "nosniff"
    other = client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert other.headers["x-request-id"] != "bad id with spaces"
    assert len(other.headers["x-request-id"]) == 32


def test_text_the_database_cannot_keep_is_refused(world: World) -> None:
    """NUL and lone surrogates never reach PostgreSQL (which refuses them with a 500):
    in JSON bodies (values and keys), forms, tus metadata and the address."""
    owner = world.admin()
    slug = world.community(owner)
    for body in ({"question": "Good\u0000day"}, {"question": "Half \ud800 a pair"},
                 {"question": "Fine", "nested\u0000": 1}, {"question": ["\udc00"]}):
        response = owner.post(f"/api/communities/{slug}/prompts", content=json.dumps(body),
                              headers={"content-type": "application/json"})
        assert_error(response, 400, "invalid_text")
    page = owner.post(f"/c/{slug}/prompts", data={"question": "Good\u0000day"})
    assert page.status_code == 400
    assert_error(owner.get(f"/api/communities/{slug}%00/prompts"), 400, "invalid_text")
    assert_error(owner.get(f"/api/communities/{slug}/review?source=a%00"), 400, "invalid_text")
    assert owner.get(f"/api/communities/{slug}/prompts").json()["prompts"] == []
    fine = owner.post(f"/api/communities/{slug}/prompts", json={"question": "Kopi \U0001f375?"})
    assert fine.status_code == 201, fine.text
