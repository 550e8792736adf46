"""Clip updates for the member's live status page, over Redis pub/sub (app and workers)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service import effects, i18n
from service.db.models import Clip


def clip_channel(community_id: int, user_id: int) -> str:
    """One member's clips in one community."""
    return f"kumpul:clips:{community_id}:{user_id}"


def clip_event(clip: Clip, **extra: Any) -> dict[str, Any]:
    """The clip as its member's pages see it; `reason` and `hint` are still msgids with
    their `reason_args`: `told` puts them in the reader's words."""
    return {"id": clip.id, "state": clip.state, "reason": clip.reason, "hint": clip.hint,
            "reason_args": clip.reason_args or {},
            "title": clip.title, "filename": clip.filename, "size": clip.size,
            "updated_at": clip.updated_at.isoformat(), **extra}


def told(event: dict[str, Any], speech: i18n.Speech | None = None) -> dict[str, Any]:
    """A clip event with its reason and hint in `speech` (the current request's)."""
    speech = speech or i18n.current()
    args = event.pop("reason_args", None) or {}
    for key in ("reason", "hint"):
        if isinstance(event.get(key), str):
            event[key] = speech.text(event[key], args)
    return event


def clip_changed(session: AsyncSession, clip: Clip, **extra: Any) -> None:
    """Tell the member's open pages about the clip once this transaction commits."""
    effects.publish(session, clip_channel(clip.community_id, clip.member_id),
                    clip_event(clip, **extra))


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


def notice_channel(user_id: int) -> str:
    """One person's notices (the bell on their open pages)."""
    return f"kumpul:notices:{user_id}"
