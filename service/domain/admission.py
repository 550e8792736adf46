"""Fair ingest: which uploaded clips go to the queue now and which wait their turn.

A member has at most `member` clips being prepared at once and a community at most
`community`; further clips stay `uploaded` without a deadline (waiting) and are queued, oldest
first, as soon as one of theirs leaves ingest. So one member, or one busy community, cannot
fill the queue ahead of everyone else. Queued clips carry a deadline (the reconciler's);
waiting ones do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service import effects
from service.db.models import Clip, utcnow
from service.domain.clip_state import ClipState
from service.settings import Settings

IN_INGEST = (str(ClipState.uploaded), str(ClipState.processing))
WAITING_MEMBER = ("Waiting for your other stories to finish preparing.",
                  "It starts by itself; you don't need to do anything.")
WAITING_COMMUNITY = ("Waiting its turn: other stories of this community are being prepared.",
                     "It starts by itself; you don't need to do anything.")


@dataclass(frozen=True)
class Admission:
    member: int
    community: int
    deadline_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(settings.member_processing_limit, settings.community_processing_limit,
                   settings.ingest_deadline_seconds)


async def _busy(session: AsyncSession, *where: ColumnElement[bool]) -> int:
    found = await session.scalar(select(func.count()).select_from(Clip).where(
        Clip.state.in_(IN_INGEST), Clip.deadline_at.is_not(None), *where))
    return int(found or 0)


async def admit(session: AsyncSession, clip: Clip, rules: Admission) -> bool:
    """Queue the ingest of an `uploaded` clip if its member and community have room; else
    leave it waiting with a note that tells the member what happens next."""
    clip.deadline_at = None
    await session.flush()
    if await _busy(session, Clip.member_id == clip.member_id) >= rules.member:
        clip.reason, clip.hint = WAITING_MEMBER
        return False
    if await _busy(session, Clip.community_id == clip.community_id) >= rules.community:
        clip.reason, clip.hint = WAITING_COMMUNITY
        return False
    clip.reason = clip.hint = None
    clip.deadline_at = utcnow() + timedelta(seconds=rules.deadline_seconds)
    effects.queue(session, "ingest_clip", clip.id)
    return True


async def admit_waiting(session: AsyncSession, rules: Admission,
                        community_id: int | None = None, limit: int = 100) -> int:
    """Queue waiting clips (of one community, or all) that now have room, oldest first."""
    query = select(Clip).where(Clip.state == str(ClipState.uploaded),
                               Clip.deadline_at.is_(None))
    if community_id is not None:
        query = query.where(Clip.community_id == community_id)
    waiting = list(await session.scalars(query.order_by(Clip.updated_at).limit(limit)))
    return sum([await admit(session, clip, rules) for clip in waiting])
