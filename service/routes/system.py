"""Operations: liveness, readiness, Prometheus metrics, the OpenAPI document, job status."""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

import anyio
import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from service import jobs
from service.errors import Forbidden, NotFound
from service.queue import QUEUE_NAMES
from service.routes.openapi_base import BASE
from service.web import json_body, require_admin, services

READY_TIMEOUT = 3.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _timed(name: str, check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with anyio.fail_after(READY_TIMEOUT):
            await check()
        result: dict[str, Any] = {"ok": True}
    except TimeoutError:
        result = {"ok": False, "error": f"no answer within {READY_TIMEOUT:g} s"}
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return {name: result}


def operator(request: Request, token: str) -> bool:
    """Whether the caller may see internals: the operator token, or (without one) a caller
    on this machine."""
    if token:
        return hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}")
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def readyz(request: Request) -> Response:
    """ok / not ok for anyone; which dependency and why only for operators."""
    svc = services(request)

    async def database() -> None:
        async with svc.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await svc.redis.ping()

    async def storage() -> None:
        await anyio.to_thread.run_sync(svc.store.check)

    checks: dict[str, Any] = {}
    for name, check in (("database", database), ("redis", redis), ("storage", storage)):
        checks.update(await _timed(name, check))
    ready = all(c["ok"] for c in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready"}
    if operator(request, svc.settings.metrics_token):
        body["checks"] = checks
        body["node"] = svc.nodes.me.id  # which node answered (several share one address)
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    svc = services(request)
    if not operator(request, svc.settings.metrics_token):
        raise Forbidden("Metrics are for operators.", code="operators_only",
                        hint="Send the operator token (KUMPUL_METRICS_TOKEN), or ask from "
                             "the server itself.")
    try:
        for name in QUEUE_NAMES:
            svc.metrics.queue_depth.labels(name).set(await svc.redis.llen(f"rq:queue:{name}"))
    except Exception:  # noqa: S110 - metrics still render without Redis
        pass
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


schemas = SchemaGenerator(BASE)


ERROR = {"$ref": "#/components/responses/Error"}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """The answers every operation of a kind can give, added where a docstring leaves them
    out: 401 when it needs someone signed in; 400 (malformed JSON or parameter), 413 (too
    large) and 415 (wrong content type) when it takes a body or a numeric parameter."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            answers = operation.setdefault("responses", {})
            if operation.get("security") != []:
                answers.setdefault(401, ERROR)
            takes_id = any(p.get("in") in ("path", "query") and p.get("schema", {}).get(
                "type") == "integer" for p in operation.get("parameters", []))
            if "requestBody" in operation or takes_id:
                answers.setdefault(400, ERROR)
            if "requestBody" in operation:
                answers.setdefault(413, ERROR)
                answers.setdefault(415, ERROR)
    return document


async def openapi(request: Request) -> Response:
    return JSONResponse(complete(schemas.get_schema(routes=request.app.routes)))


async def _admin(request: Request) -> None:
    async with services(request).db() as session:
        await require_admin(request, session)


async def ping_job(request: Request) -> Response:
    """
    summary: Enqueue a proof-of-life job for the workers (site admins).
    tags: [jobs]
    requestBody:
      content:
        application/json:
          schema: {type: object, properties: {note: {type: string, maxLength: 200}}}
    responses:
      202: {description: Enqueued, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
    """
    await _admin(request)
    body = await json_body(request) if request.headers.get("content-type") else {}
    note = str(body.get("note", "ping"))[:200]
    job_id = await anyio.to_thread.run_sync(jobs.ping, services(request).queues, note)
    return JSONResponse({"id": job_id, "status": "queued"}, status_code=202)


async def job_status(request: Request) -> Response:
    """
    summary: A job's status, result, error and progress (site admins).
    tags: [jobs]
    parameters:
      - {name: job_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The job, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    await _admin(request)
    job_id = request.path_params["job_id"]
    queues = services(request).queues
    view = await anyio.to_thread.run_sync(queues.job, job_id)
    if view is None:
        raise NotFound("No job '%(job)s'.", code="job_not_found", job=job_id)
    return JSONResponse({"id": view.id, "status": view.status, "result": view.result,
                         "error": view.error, "meta": view.meta})


routes = [
    Route("/healthz", healthz, methods=["GET"], include_in_schema=False),
    Route("/readyz", readyz, methods=["GET"], include_in_schema=False),
    Route("/metrics", metrics, methods=["GET"], include_in_schema=False),
    Route("/api/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    Route("/api/admin/jobs/ping", ping_job, methods=["POST"]),
    Route("/api/admin/jobs/{job_id}", job_status, methods=["GET"]),
]
