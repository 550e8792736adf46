"""API: a community's webhook endpoints for integrators, their secrets and delivery log
(owners). What each event's payload looks like is in the OpenAPI document's `webhooks`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.db.models import WebhookDelivery, WebhookEndpoint
from service.domain import deliveries, webhooks
from service.domain.roles import Permission
from service.web import int_param, json_body, member_access, page_of, services


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def endpoint_view(e: WebhookEndpoint, *, secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id, "url": e.url, "description": e.description, "event_types": e.event_types,
        "enabled": e.disabled_at is None, "disabled_at": _time(e.disabled_at),
        "disabled_reason": e.disabled_reason, "last_success_at": _time(e.last_success_at),
        "previous_secret_expires_at": _time(e.previous_secret_expires_at),
        "created_at": _time(e.created_at)}
    if secret:
        out["secret"] = e.secret
    return out


def delivery_view(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "message_id": d.message_id, "event_type": d.event_type,
            "state": d.state, "attempts": d.attempts, "round": d.round,
            "next_attempt_at": _time(d.next_attempt_at), "status": d.last_status,
            "latency_ms": d.last_latency_ms, "response": d.last_response,
            "error": d.last_error, "created_at": _time(d.created_at),
            "delivered_at": _time(d.delivered_at), "payload": d.payload}


async def list_endpoints(request: Request) -> Response:
    """
    summary: The community's webhook endpoints (owners), and the event types there are.
    tags: [webhooks]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Endpoints, content: {application/json: {schema: {$ref: '#/components/schemas/WebhookEndpoints'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.manage_webhooks)
        rows = await webhooks.of_community(session, access)
    return JSONResponse({"endpoints": [endpoint_view(e) for e in rows],
                         "event_types": list(webhooks.EVENT_TYPES)})


async def create_endpoint(request: Request) -> Response:
    """
    summary: Add a webhook endpoint (owners); its URL must be a public address. The answer holds its signing secret.
    tags: [webhooks]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/NewWebhookEndpoint'}
    responses:
      201: {description: Created, content: {application/json: {schema: {$ref: '#/components/schemas/WebhookEndpointWithSecret'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_webhooks)
        body = await json_body(request)
        endpoint = await webhooks.create(
            session, access, url=body.get("url"), types=body.get("event_types"),
            description=body.get("description", ""), allow=svc.settings.webhook_allow_hosts)
        out = endpoint_view(endpoint, secret=True)
    return JSONResponse(out, status_code=201)


async def show_endpoint(request: Request) -> Response:
    """
    summary: One webhook endpoint with its current signing secret (owners).
    tags: [webhooks]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: endpoint_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The endpoint, content: {application/json: {schema: {$ref: '#/components/schemas/WebhookEndpointWithSecret'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.manage_webhooks)
        endpoint = await webhooks.get(session, access, request.path_params["endpoint_id"])
    return JSONResponse(endpoint_view(endpoint, secret=True))


async def update_endpoint(request: Request) -> Response:
    """
    summary: Change a webhook endpoint's event types, description or URL, or disable and enable it (owners).
    tags: [webhooks]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: endpoint_id, in: path, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/WebhookEndpointChange'}
    responses:
      200: {description: Changed, content: {application/json: {schema: {$ref: '#/components/schemas/WebhookEndpoint'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      422: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_webhooks)
        body = await json_body(request)
        endpoint = await webhooks.get(session, access, request.path_params["endpoint_id"])
        await webhooks.update(session, access, endpoint, types=body.get("event_types"),
                              description=body.get("description"), url=body.get("url"),
                              enabled=body.get("enabled"),
                              allow=svc.settings.webhook_allow_hosts)
        out = endpoint_view(endpoint)
    return JSONResponse(out)


async def delete_endpoint(request: Request) -> Response:
    """
    summary: Delete a webhook endpoint and its delivery log (owners).
    tags: [webhooks]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: endpoint_id, in: path, required: true, schema: {type: string}}
    responses:
      204: {description: Deleted}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_webhooks)
        endpoint = await webhooks.get(session, access, request.path_params["endpoint_id"])
        await webhooks.delete(session, access, endpoint)
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    """
    summary: Give a webhook endpoint a new signing secret (owners); deliveries are signed with the old one too until previous_secret_expires_at.
    tags: [webhooks]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: endpoint_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Rotated, content: {application/json: {schema: {$ref: '#/components/schemas/WebhookEndpointWithSecret'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_webhooks)
        endpoint = await webhooks.get(session, access, request.path_params["endpoint_id"])
        await webhooks.rotate(session, access, endpoint, svc.settings.webhook_rotation_hours)
        out = endpoint_view(endpoint, secret=True)
    return JSONResponse(out)


async def list_deliveries(request: Request) -> Response:
    """
    summary: A webhook endpoint's delivery log, newest first (owners); the latest 200 are kept.
    tags: [webhooks]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: endpoint_id, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 200}}
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: Deliveries, content: {application/json: {schema: {$ref: '#/components/schemas/WebhookDeliveries'}}}}
      400: {$ref: '#/components/responses/Error'}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
    """
    page = page_of(request)
    svc = services(request)
    async with svc.db() as session:
        access = await member_access(request, session, Permission.manage_webhooks)
        endpoint = await webhooks.get(session, access, request.path_params["endpoint_id"])
        rows, next_offset = page.cut(await webhooks.deliveries(session, endpoint, page))
    return JSONResponse({"deliveries": [delivery_view(d) for d in rows],
                         "next_offset": next_offset})


async def send_again(request: Request) -> Response:
    """
    summary: Send one delivery again, with the same webhook-id (owners).
    tags: [webhooks]
    parameters:
      - {name: slug, in: path, required: true, schema: {type: string}}
      - {name: endpoint_id, in: path, required: true, schema: {type: string}}
      - {name: delivery_id, in: path, required: true, schema: {type: integer}}
    responses:
      202: {description: Queued, content: {application/json: {schema: {$ref: '#/components/schemas/WebhookDelivery'}}}}
      401: {$ref: '#/components/responses/Error'}
      403: {$ref: '#/components/responses/Error'}
      404: {$ref: '#/components/responses/Error'}
      409: {$ref: '#/components/responses/Error'}
    """
    svc = services(request)
    async with svc.transaction() as session:
        access = await member_access(request, session, Permission.manage_webhooks)
        delivery = await deliveries.send_again(
            session, access, request.path_params["endpoint_id"],
            int_param(request.path_params["delivery_id"], "delivery_id"))
        out = delivery_view(delivery)
    return JSONResponse(out, status_code=202)


BASE = "/api/communities/{slug}/webhooks"
routes = [
    Route(BASE, list_endpoints, methods=["GET"]),
    Route(BASE, create_endpoint, methods=["POST"]),
    Route(BASE + "/{endpoint_id}", show_endpoint, methods=["GET"]),
    Route(BASE + "/{endpoint_id}", update_endpoint, methods=["PATCH"]),
    Route(BASE + "/{endpoint_id}", delete_endpoint, methods=["DELETE"]),
    Route(BASE + "/{endpoint_id}/rotate-secret", rotate_secret, methods=["POST"]),
    Route(BASE + "/{endpoint_id}/deliveries", list_deliveries, methods=["GET"]),
    Route(BASE + "/{endpoint_id}/deliveries/{delivery_id}/send-again", send_again,
          methods=["POST"]),
]
