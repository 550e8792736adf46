"""Operators' view: liveness, readiness naming each dependency, metrics, OpenAPI, JSON logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route
from starlette.testclient import TestClient

from service.app import create_app
from service.logs import JsonFormatter
from service.settings import Settings
from tests.conftest import World, free_port, make_settings

TOKEN = "operator-token-for-tests"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
                         KUMPUL_METRICS_TOKEN=TOKEN)


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_names_each_dependency(client: TestClient) -> None:
    body = client.get("/readyz", headers=OPERATOR).json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "storage"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_reports_a_missing_redis(settings: Settings) -> None:
    """With Redis down, readiness is 503 and says which part failed; liveness stays up."""
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(dead)) as client:
        response = client.get("/readyz", headers=OPERATOR)
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert not checks["redis"]["ok"] and "Connection" in checks["redis"]["error"]
        assert checks["database"]["ok"] and checks["storage"]["ok"]
        assert client.get("/healthz").status_code == 200
        anonymous = client.get("/readyz")
        assert anonymous.status_code == 503 and anonymous.json() == {"status": "not_ready"}


def test_internals_are_for_operators(client: TestClient) -> None:
    """Anonymous callers learn ok / not ok and nothing else; /metrics needs the operator
    token (a wrong one is refused too)."""
    assert client.get("/readyz").json() == {"status": "ready"}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "operators_only"
    assert client.get("/metrics", headers=OPERATOR).status_code == 200


def test_metrics(world: World, client: TestClient) -> None:
    world.admin()
    client.get("/api/communities/nope")
    text = client.get("/metrics", headers=OPERATOR).text
    assert 'kumpul_http_requests_total{method="POST",route="/api/auth/login",status="200"}' in text
    assert 'route="/api/communities/{slug}",status="401"' in text
    assert 'kumpul_logins_total{outcome="ok"}' in text
    assert 'kumpul_queue_jobs{queue="ingest"}' in text


def test_openapi_document_is_valid_and_complete(client: TestClient) -> None:
    """Every /api/ route appears in a valid OpenAPI 3.1 document."""
    doc = client.get("/api/openapi.json").json()
    validate(doc)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    app_routes = {
        (route.path, method)
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith("/api/") and route.include_in_schema
        and route.path != "/api/openapi.json"
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert app_routes and app_routes == documented
    for ops in doc["paths"].values():
        for op in ops.values():
            assert op["summary"] and "responses" in op


def test_logs_are_json_with_request_id(client: TestClient,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kumpul.http")
    client.get("/healthz", headers={"x-request-id": "rid-abcdef12"})
    record = next(r for r in caplog.records if r.name == "kumpul.http")
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "request" and entry["path"] == "/healthz" and entry["status"] == 200
    assert entry["method"] == "GET" and "ms" in entry


def test_static_files_served(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../service/settings.py").status_code == 404
