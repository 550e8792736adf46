"""The fixed part of the OpenAPI document; each endpoint's docstring adds its operation."""

from __future__ import annotations

from typing import Any

from service import __version__
from service.routes.openapi_webhooks import MANAGEMENT, PAYLOADS, WEBHOOKS


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


_str = {"type": "string"}
_int = {"type": "integer"}
_time = {"type": "string", "format": "date-time"}
_nullable_str = {"type": ["string", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"code": _str, "message": _str, "hint": _str},
                                 ["code", "message"])}, ["error"]),
    "Role": {"type": "string", "enum": ["member", "host", "moderator", "owner"]},
    "User": _obj({"id": _int, "email": _str, "display_name": _str, "is_admin": {"type": "boolean"},
                  "language": _nullable_str, "time_zone": _nullable_str},
                 ["id", "email", "display_name", "is_admin"]),
    "Login": _obj({"email": _str, "password": _str}, ["email", "password"]),
    "Signup": _obj({"email": _str, "display_name": _str, "password": _str}),
    "Community": _obj({"slug": _str, "name": _str, "created_at": _time,
                       "language": {"$ref": "#/components/schemas/Language"},
                       "time_zone": _str,
                       "role": {"$ref": "#/components/schemas/Role"}}, ["slug", "name"]),
    "NewCommunity": _obj({"name": _str, "slug": _str,
                          "language": {"$ref": "#/components/schemas/Language"},
                          "time_zone": _str}, ["name"]),
    "Language": {"type": "string", "enum": ["id", "en"]},
    "Place": _obj({"language": {"$ref": "#/components/schemas/Language"}, "time_zone": _str}),
    "PersonalPlace": _obj({"language": {"type": ["string", "null"], "enum": ["id", "en", None]},
                           "time_zone": _nullable_str}),
    "Release": _obj({"version": _int, "language": {"$ref": "#/components/schemas/Language"},
                     "body": _str, "sha256": _str, "created_at": _time},
                    ["version", "body", "sha256"]),
    "Me": _obj({"user": {"$ref": "#/components/schemas/User"}, "csrf_token": _nullable_str,
                "communities": {"type": "array",
                                "items": {"$ref": "#/components/schemas/Community"}}}, ["user"]),
    "Joined": _obj({"user": {"$ref": "#/components/schemas/User"},
                    "community": {"$ref": "#/components/schemas/Community"},
                    "csrf_token": _nullable_str}, ["user", "community"]),
    "InvitePreview": _obj({"community": {"$ref": "#/components/schemas/Community"},
                           "role": {"$ref": "#/components/schemas/Role"}}),
    "Member": _obj({"user_id": _int, "display_name": _str, "email": _str,
                    "role": {"$ref": "#/components/schemas/Role"}, "joined_at": _time},
                   ["user_id", "display_name", "role"]),
    "Invite": _obj({"id": _int, "role": {"$ref": "#/components/schemas/Role"},
                    "max_uses": _int, "uses": _int, "note": _str, "expires_at": _time,
                    "url": _str}, ["id", "role", "max_uses", "uses", "expires_at"]),
    "NewInvite": _obj({"role": {"$ref": "#/components/schemas/Role"},
                       "max_uses": {"type": "integer", "minimum": 1, "maximum": 1000},
                       "days": {"type": "integer", "minimum": 1, "maximum": 365},
                       "note": {"type": "string", "maxLength": 120}}),
    "Token": _obj({"id": _int, "name": _str, "prefix": _str, "created_at": _time,
                   "last_used_at": {"type": ["string", "null"], "format": "date-time"}},
                  ["id", "name", "prefix"]),
    "NewToken": {"allOf": [{"$ref": "#/components/schemas/Token"},
                           _obj({"token": _str}, ["token"])]},
    "Job": _obj({"id": _str, "status": _str, "result": {}, "error": _nullable_str,
                 "meta": {"type": "object"}}, ["id", "status"]),
    "AuditEvent": _obj({"id": _int, "action": _str, "actor_id": {"type": ["integer", "null"]},
                        "subject_type": _str, "subject_id": _str, "data": {"type": "object"},
                        "created_at": _time}, ["id", "action"]),
    "Prompt": _obj({"id": _int, "question": _str, "description": _str,
                    "max_seconds": {"type": ["integer", "null"]}, "created_at": _time},
                   ["id", "question"]),
    "NewPrompt": _obj({"question": {"type": "string", "minLength": 3, "maxLength": 200},
                       "description": _str,
                       "max_seconds": {"type": ["integer", "null"], "minimum": 5,
                                       "maximum": 3600}}, ["question"]),
    "Clip": _obj({"id": _str, "state": {"type": "string", "enum": [
        "uploading", "uploaded", "processing", "ready_for_review", "approved", "rejected",
        "invalid", "failed", "withdrawn"]}, "reason": _nullable_str, "hint": _nullable_str,
        "title": _str, "filename": _str, "size": _int, "updated_at": _time,
        "created_at": _time, "note": _nullable_str, "duration": {"type": ["number", "null"]},
        "media": {"type": ["object", "null"]}, "withdrawable": {"type": "boolean"},
        "reels": {"type": "array", "items": _obj({"title": _str, "url": _str})}},
        ["id", "state"]),
}


def _list(name: str, item: str) -> dict[str, Any]:
    return _obj({name: {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}},
                [name])


SCHEMAS.update({
    "Communities": _list("communities", "Community"),
    "Members": _list("members", "Member"),
    "Invites": _list("invites", "Invite"),
    "Tokens": _list("tokens", "Token"),
    "AuditEvents": _list("events", "AuditEvent"),
    "Prompts": _list("prompts", "Prompt"),
    "Clips": _list("clips", "Clip"),
    "ReviewClip": {"allOf": [{"$ref": "#/components/schemas/Clip"}, _obj({
        "member": _obj({"id": _int, "display_name": _str}),
        "prompt_id": {"type": ["integer", "null"]},
        "source": _str, "frames": _int, "trim_in": _int, "trim_out": _int,
        "caption_name": _nullable_str, "caption_quote": _str, "consent": {"type": "object"},
        "facts": {"type": "object"}, "media": {"type": "object"},
        "edits": {"type": "array", "items": {"type": "object"}}},
        ["member", "frames", "trim_in", "trim_out", "media"])]},
    "ReviewQueue": _obj({"clips": {"type": "array",
                                   "items": {"$ref": "#/components/schemas/ReviewClip"}},
                         "reasons": {"type": "array", "items": _obj({"code": _str,
                                                                    "message": _str})}},
                        ["clips", "reasons"]),
    "Rejection": _obj({"reason": {"type": "string", "enum": [
        "off_topic", "quality", "privacy", "brand", "other"]},
        "note": {"type": "string", "maxLength": 500}}, ["reason"]),
    "ClipEdit": _obj({"trim_in": {"type": "integer", "minimum": 0},
                      "trim_out": {"type": "integer", "minimum": 1},
                      "caption_name": {"type": ["string", "null"], "maxLength": 60},
                      "caption_quote": {"type": "string", "maxLength": 120}}),
    "Reel": _obj({"id": _str, "slug": _str, "title": _str, "state": {"type": "string", "enum": [
        "draft", "rendering", "rendered", "published", "unpublished", "failed", "stale"]},
        "canvas": _str, "composition": {"type": "object"}, "version": _int,
        "rendered_version": {"type": ["integer", "null"]},
        "public_version": {"type": ["integer", "null"]}, "reason": _nullable_str,
        "output": {"type": "object"}, "manifest": {"type": "object"}, "updated_at": _time,
        "progress": {"type": ["number", "null"]}, "preview": {"type": ["object", "null"]},
        "public_url": _nullable_str, "embed": _nullable_str},
        ["id", "slug", "title", "state", "canvas", "composition"]),
    "Reels": _list("reels", "Reel"),
    "NewReel": _obj({"title": {"type": "string", "minLength": 1, "maxLength": 120},
                     "canvas": {"type": "string", "enum": ["9:16", "1:1", "16:9"]}}, ["title"]),
    "ReelChange": _obj({
        "title": {"type": "string", "maxLength": 120},
        "canvas": {"type": "string", "enum": ["9:16", "1:1", "16:9"]},
        "items": {"type": "array", "maxItems": 30, "items": _obj({
            "clip_id": _str, "trim_in": _int, "trim_out": _int}, ["clip_id"])},
        "transition": {"type": "string", "enum": ["cut", "crossfade"]},
        "crossfade_frames": {"type": "integer", "enum": [8, 15, 30]},
        "title_card": {"type": ["object", "null"], "properties": {
            "text": {"type": "string", "maxLength": 80},
            "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}}},
        "captions": {"type": "boolean"}, "music_asset": _nullable_str,
        "intro_asset": _nullable_str, "outro_asset": _nullable_str}),
    "Asset": _obj({"id": _str, "kind": {"type": "string", "enum": ["music", "intro", "outro"]},
                   "name": _str, "size": _int, "content_type": _str, "created_at": _time},
                  ["id", "kind", "name"]),
    "Assets": _list("assets", "Asset"),
    "LiveSession": _obj({"id": _str, "title": _str, "description": _str,
                         "state": {"type": "string", "enum": ["scheduled", "live", "ended"]},
                         "starts_at": _time, "started_at": {"type": ["string", "null"]},
                         "ended_at": {"type": ["string", "null"]}, "host_id": _int,
                         "viewers": _int, "publishing": {"type": "boolean"},
                         "video_codec": _nullable_str, "audio_codec": _nullable_str,
                         "recording": {"type": "string",
                                       "enum": ["none", "processing", "ready", "failed"]},
                         "whip_url": _str, "whep_url": _str, "publish_token": _str,
                         "replay": {"oneOf": [{"type": "null"}, _obj(
                             {"web": _str, "poster": _str, "filmstrip": _str},
                             ["web", "poster"])]}},
                        ["id", "title", "state"]),
    "LiveSessions": _list("sessions", "LiveSession"),
    "ViewerQuality": _obj({"layer": {"type": "string", "enum": ["high", "low", "audio"]},
                           "ceiling": {"type": "string", "enum": ["high", "low", "audio"]}},
                          ["layer", "ceiling"]),
    "ViewerQualityChoice": _obj({"ceiling": {"type": "string",
                                             "enum": ["high", "low", "audio"]}}, ["ceiling"]),
    "NewLiveSession": _obj({"title": {"type": "string", "minLength": 3, "maxLength": 120},
                            "description": {"type": "string", "maxLength": 2000},
                            "starts_at": {"type": "string", "format": "date-time"}},
                           ["title"]),
    "Moment": _obj({"id": _int, "start_ms": _int, "end_ms": _int, "score": {"type": "number"},
                    "why": _str, "state": {"type": "string", "enum": [
                        "proposed", "accepted", "discarded"]},
                    "clip": {"oneOf": [{"type": "null"}, _obj({
                        "id": _str, "state": _str, "title": _str}, ["id", "state"])]}},
                   ["id", "start_ms", "end_ms", "state"]),
    "MomentBounds": _obj({"start_ms": {"type": "number", "minimum": 0},
                          "end_ms": {"type": "number", "minimum": 0}}),
    "Highlights": _obj({
        "session": _obj({"id": _str, "title": _str, "state": _str}),
        "recording": _obj({"state": _str}), "terms": {"type": "object"},
        "finder": _obj({"state": {"type": "string", "enum": [
            "none", "finding", "ready", "failed"]}, "min_seconds": _int, "max_seconds": _int,
            "top": _int}),
        "activity": _obj({k: {"type": "array", "items": {"type": "number"}}
                          for k in ("reactions", "messages", "loudness")}),
        "moments": {"type": "array", "items": {"$ref": "#/components/schemas/Moment"}}},
        ["session", "recording", "finder", "activity", "moments"]),
    "CommunityDetail": {"allOf": [{"$ref": "#/components/schemas/Community"},
                                  _obj({"release": {"$ref": "#/components/schemas/Release"}})]},
})
SCHEMAS.update(MANAGEMENT)
SCHEMAS.update(PAYLOADS)

BASE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Kumpul API", "version": __version__,
             "description": "Every error has the shape of the Error schema."},
    "components": {
        "schemas": SCHEMAS,
        "responses": {"Error": {"description": "An error",
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}}}}},
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "A personal API token (kmp_...)"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "kumpul_session",
                       "description": "Browser session; state changes also need X-CSRF-Token"},
        },
    },
    "security": [{"bearer": []}, {"cookie": []}],
    "webhooks": WEBHOOKS,
}
