"""The append-only audit log: every moderator decision and consent event is written here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import AuditEvent


def record(
    session: AsyncSession,
    *,
    action: str,
    subject_type: str,
    subject_id: str | int,
    actor_id: int | None,
    community_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to the caller's transaction, so it commits with the change it records."""
    event = AuditEvent(
        community_id=community_id,
        actor_id=actor_id,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        data=data or {},
    )
    session.add(event)
    return event


async def events(
    session: AsyncSession, community_id: int, *, before_id: int | None = None, limit: int = 50
) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.community_id == community_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
    return list(rows)
