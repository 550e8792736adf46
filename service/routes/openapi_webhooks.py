"""The integrations part of the OpenAPI document: the schemas of webhook endpoints and of
the lifecycle numbers, and the `webhooks` section (OpenAPI 3.1) with every event's payload
and its signature headers."""

from __future__ import annotations

from typing import Any

from service.domain.webhooks import EVENT_TYPES


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_str = {"type": "string"}
_int = {"type": "integer"}
_time = {"type": "string", "format": "date-time"}
_maybe_time = {"type": ["string", "null"], "format": "date-time"}
_maybe_str = {"type": ["string", "null"]}
_maybe_int = {"type": ["integer", "null"]}
_types = {"type": "array", "minItems": 1,
          "items": {"type": "string", "enum": list(EVENT_TYPES)}}

MANAGEMENT: dict[str, Any] = {
    "WebhookEndpoint": _obj({
        "id": _str, "url": _str, "description": _str, "event_types": _types,
        "enabled": {"type": "boolean"}, "disabled_at": _maybe_time,
        "disabled_reason": {"type": ["string", "null"], "enum": ["owner", "failing", None]},
        "last_success_at": _maybe_time, "previous_secret_expires_at": _maybe_time,
        "created_at": _time}, ["id", "url", "event_types", "enabled"]),
    "WebhookEndpointWithSecret": {"allOf": [_ref("WebhookEndpoint"), _obj({
        "secret": {"type": "string", "pattern": "^whsec_"}}, ["secret"])]},
    "WebhookEndpoints": _obj({
        "endpoints": {"type": "array", "items": _ref("WebhookEndpoint")},
        "event_types": {"type": "array", "items": _str}}, ["endpoints", "event_types"]),
    "NewWebhookEndpoint": _obj({
        "url": {"type": "string", "maxLength": 2000}, "event_types": _types,
        "description": {"type": "string", "maxLength": 200}}, ["url", "event_types"]),
    "WebhookEndpointChange": _obj({
        "url": {"type": "string", "maxLength": 2000}, "event_types": _types,
        "description": {"type": "string", "maxLength": 200}, "enabled": {"type": "boolean"}}),
    "WebhookDelivery": _obj({
        "id": _int, "message_id": _str, "event_type": _str,
        "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "attempts": _int, "round": _int, "next_attempt_at": _maybe_time,
        "status": _maybe_int, "latency_ms": _maybe_int, "response": _maybe_str,
        "error": _maybe_str, "created_at": _time, "delivered_at": _maybe_time,
        "payload": {"type": "object"}}, ["id", "message_id", "event_type", "state"]),
    "WebhookDeliveries": _obj({
        "deliveries": {"type": "array", "items": _ref("WebhookDelivery")},
        "next_offset": _maybe_int}, ["deliveries"]),
}

_steps = {"first_story": _int, "approved": _int, "featured": _int}
MANAGEMENT["LifecycleNumbers"] = _obj({
    "invites_sent": _int, "accepted": _int,
    "totals": _obj(_steps, list(_steps)),
    "prompts": {"type": "array", "items": _obj({
        "prompt_id": _maybe_int, "question": _maybe_str, "open": {"type": "boolean"},
        **_steps}, ["prompt_id", *_steps])}}, ["invites_sent", "accepted", "totals", "prompts"])

# What each event carries in `data`, beside the community's short name.
_CLIP = _obj({"id": _str, "state": _str, "title": _str, "prompt_id": _maybe_int,
              "member_id": _int,
              "source": {"type": "string", "enum": ["upload", "recording", "live"]},
              "reason": _maybe_str, "updated_at": _maybe_time}, ["id", "state"])
_REEL = _obj({"id": _str, "slug": _str, "title": _str, "state": _str, "version": _maybe_int,
              "published_at": _maybe_time}, ["id", "slug", "state"])
_SESSION = _obj({"id": _str, "title": _str, "state": _str, "host_id": _int,
                 "starts_at": _maybe_time, "started_at": _maybe_time,
                 "ended_at": _maybe_time}, ["id", "state"])
_MOMENT = _obj({"id": _int, "session_id": _str, "start_ms": _int, "end_ms": _int,
                "score": {"type": "number"}, "state": _str}, ["id", "session_id"])
_SUBJECTS = {"clip": ("WebhookClip", _CLIP), "reel": ("WebhookReel", _REEL),
             "live": ("WebhookSession", _SESSION), "moment": ("WebhookMoment", _MOMENT)}
_KEYS = {"clip": "clip", "reel": "reel", "live": "session", "moment": "moment"}

PAYLOADS: dict[str, Any] = {name: schema for name, schema in _SUBJECTS.values()}
for kind, (name, _schema) in _SUBJECTS.items():
    kinds = [t for t in EVENT_TYPES if t.split(".")[0] == kind]
    PAYLOADS[f"{name}Event"] = _obj({
        "type": {"type": "string", "enum": kinds},
        "timestamp": _time,
        "data": _obj({"community": _str, _KEYS[kind]: _ref(name)}, ["community", _KEYS[kind]]),
    }, ["type", "timestamp", "data"])

_HEADERS = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": _str,
     "description": "The message's id (msg_...); the same on every retry: deduplicate on it."},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": _str,
     "description": "Seconds since the epoch when this attempt was signed."},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": _str,
     "description": "Space-separated `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with "
                    "the endpoint's secret (two while a rotated secret overlaps), per "
                    "Standard Webhooks."},
]


def _webhook(event_type: str) -> dict[str, Any]:
    kind = event_type.split(".")[0]
    return {"post": {
        "summary": f"{event_type}",
        "description": "Sent to each enabled endpoint that asked for this event type; "
                       "answer 2xx within the timeout, else it is retried (about 24 h). "
                       "Redirects are not followed.",
        "tags": ["webhooks"],
        "parameters": _HEADERS,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref(f"{_SUBJECTS[kind][0]}Event")}}},
        "responses": {"2XX": {"description": "Received; not sent again."}},
        "security": [],
    }}


WEBHOOKS: dict[str, Any] = {event_type: _webhook(event_type) for event_type in EVENT_TYPES}
