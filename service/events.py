"""Clip updates for the member's live status page, over Redis pub/sub (app and workers)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service import effects
from service.db.models import Clip


def clip_channel(community_id: int, user_id: int) -> str:
    """One member's clips in one community."""
    return f"kumpul:clips:{community_id}:{user_id}"


def clip_event(clip: Clip, **extra: Any) -> dict[str, Any]:
    return {"id": clip.id, "state": clip.state, "reason": clip.reason, "hint": clip.hint,
            "title": clip.title, "filename": clip.filename, "size": clip.size,
            "updated_at": clip.updated_at.isoformat(), **extra}


def clip_changed(session: AsyncSession, clip: Clip, **extra: Any) -> None:
    """Tell the member's open pages about the clip once this transaction commits."""
    effects.publish(session, clip_channel(clip.community_id, clip.member_id),
                    clip_event(clip, **extra))


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))
