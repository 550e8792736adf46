"""JSON representations of domain rows, shared by the API handlers."""

from __future__ import annotations

from typing import Any

from service.db.models import ApiToken, AuditEvent, Community, Invite, Membership, ReleaseText, User


def user(u: User) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "display_name": u.display_name, "is_admin": u.is_admin,
            "language": u.language, "time_zone": u.time_zone}


def community(c: Community, role: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"slug": c.slug, "name": c.name, "created_at": c.created_at.isoformat(),
                           "language": c.language, "time_zone": c.time_zone}
    if role is not None:
        out["role"] = role
    return out


def member(m: Membership, u: User) -> dict[str, Any]:
    return {"user_id": u.id, "display_name": u.display_name, "email": u.email, "role": m.role,
            "joined_at": m.created_at.isoformat()}


def invite(i: Invite, url: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": i.id, "role": i.role, "max_uses": i.max_uses, "uses": i.uses,
                           "note": i.note, "expires_at": i.expires_at.isoformat()}
    if url is not None:
        out["url"] = url
    return out


def release(r: ReleaseText) -> dict[str, Any]:
    return {"version": r.version, "language": r.language, "body": r.body, "sha256": r.sha256,
            "created_at": r.created_at.isoformat()}


def token(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None}


def audit_event(e: AuditEvent) -> dict[str, Any]:
    return {"id": e.id, "action": e.action, "actor_id": e.actor_id,
            "subject_type": e.subject_type, "subject_id": e.subject_id, "data": e.data,
            "created_at": e.created_at.isoformat()}
