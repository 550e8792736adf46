"""Moderation: the review queue, approve and reject with a reason, trims and captions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip, ClipEdit, User, utcnow
from service.domain import audit, deliveries, notifications, reels
from service.domain.clip_state import ClipState, transition
from service.domain.communities import Access
from service.domain.paging import Page
from service.domain.text import one_line
from service.domain.trims import check_trim, trim_of
from service.errors import NotFound, Unprocessable
from service.events import clip_changed
from service.i18n import N_

QUEUE_STATES = ("ready_for_review", "approved", "rejected")
SOURCES = ("upload", "recording", "live")


@dataclass(frozen=True)
class Reason:
    code: str
    message: str  # what the member reads


REASONS = {r.code: r for r in (
    Reason("off_topic", N_("This story doesn't answer the prompt.")),
    Reason("quality", N_("The picture or sound is too poor to use.")),
    Reason("privacy", N_("It shows other people or private details we can't publish.")),
    Reason("brand", N_("It doesn't fit the community's guidelines.")),
    Reason("other", N_("A moderator didn't approve this story.")),
)}


async def queue(session: AsyncSession, access: Access, *, state: str | None = None,
                prompt_id: int | None = None, source: str | None = None,
                page: Page | None = None) -> list[tuple[Clip, User]]:
    """Clips for moderators, oldest waiting first (newest first for decided ones)."""
    states = [state] if state else ["ready_for_review"]
    bad = [s for s in states if s not in QUEUE_STATES]
    if bad:
        raise Unprocessable("state must be one of %(choices)s.", choices=", ".join(QUEUE_STATES),
                            code="invalid_state")
    if source is not None and source not in SOURCES:
        raise Unprocessable("source must be one of %(choices)s.", choices=", ".join(SOURCES),
                            code="invalid_source")
    query = (select(Clip, User).join(User, User.id == Clip.member_id)
             .where(Clip.community_id == access.community.id, Clip.state.in_(states)))
    if prompt_id is not None:
        query = query.where(Clip.prompt_id == prompt_id)
    if source is not None:
        query = query.where(Clip.source == source)
    order = Clip.updated_at.asc() if states == ["ready_for_review"] else Clip.updated_at.desc()
    query = query.order_by(order, Clip.id)
    rows = await session.execute(page.window(query) if page else query.limit(200))
    return [(clip, user) for clip, user in rows]


async def moderated_clip(session: AsyncSession, access: Access, clip_id: str) -> Clip:
    clip = await session.get(Clip, clip_id)
    if clip is None or clip.community_id != access.community.id \
            or clip.state not in QUEUE_STATES:
        raise NotFound("No such story to review.", code="clip_not_found")
    return clip


async def approve(session: AsyncSession, access: Access, clip: Clip) -> None:
    transition(clip, ClipState.approved)
    clip.reviewed_by, clip.reviewed_at = access.user.id, utcnow()
    audit.record(session, action="clip.approved", subject_type="clip", subject_id=clip.id,
                 actor_id=access.user.id, community_id=clip.community_id)
    await deliveries.emit(session, clip.community_id, "clip.approved",
                          deliveries.clip_data(clip))
    clip_changed(session, clip)
    await notifications.story_decided(session, clip, "story_approved")


async def reject(session: AsyncSession, access: Access, clip: Clip, *, code: object,
                 note: object = "") -> None:
    """Reject with a template reason and optional words of the moderator's own. The member
    sees both. Reels that used an approved clip go stale and render again without it."""
    reason = REASONS.get(str(code or ""))
    if reason is None:
        raise Unprocessable("reason must be one of %(choices)s.", choices=", ".join(REASONS),
                            code="invalid_reason")
    text = one_line(note, 500)
    was_approved = clip.state == ClipState.approved
    transition(clip, ClipState.rejected, reason=reason.message, hint=text or None)
    clip.reviewed_by, clip.reviewed_at = access.user.id, utcnow()
    audit.record(session, action="clip.rejected", subject_type="clip", subject_id=clip.id,
                 actor_id=access.user.id, community_id=clip.community_id,
                 data={"reason": reason.code, "note": text})
    if was_approved:
        await reels.drop_clip(session, clip, why="clip.rejected")
    await deliveries.emit(session, clip.community_id, "clip.rejected",
                          deliveries.clip_data(clip))
    clip_changed(session, clip)
    await notifications.story_decided(session, clip, "story_changes", reason=reason.message,
                                      note=text)


async def edit(session: AsyncSession, access: Access, clip: Clip,
               changes: dict[str, Any]) -> ClipEdit | None:
    """Trim (in/out frames) and caption (name, quote) of a clip, kept as a history."""
    known = {"trim_in", "trim_out", "caption_name", "caption_quote"}
    unknown = set(changes) - known
    if unknown:
        raise Unprocessable("Unknown fields: %(fields)s.", fields=", ".join(sorted(unknown)),
                            code="unknown_fields")
    start, end = trim_of(clip)
    name, quote = clip.caption_name, clip.caption_quote
    if "trim_in" in changes or "trim_out" in changes:
        start, end = check_trim(clip, changes.get("trim_in", start),
                                changes.get("trim_out", end))
    if "caption_name" in changes:
        name = _text(changes["caption_name"], "caption_name", 60, nullable=True)
    if "caption_quote" in changes:
        quote = _text(changes["caption_quote"], "caption_quote", 120) or ""
    before = {"trim_in": clip.trim_in, "trim_out": clip.trim_out,
              "caption_name": clip.caption_name, "caption_quote": clip.caption_quote}
    after = {"trim_in": start, "trim_out": end, "caption_name": name, "caption_quote": quote}
    diff = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not diff:
        return None
    clip.trim_in, clip.trim_out = start, end
    clip.caption_name, clip.caption_quote = name, quote
    entry = ClipEdit(clip_id=clip.id, editor_id=access.user.id, changes=diff)
    session.add(entry)
    audit.record(session, action="clip.edited", subject_type="clip", subject_id=clip.id,
                 actor_id=access.user.id, community_id=clip.community_id, data=diff)
    return entry


def _text(value: object, field: str, limit: int, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise Unprocessable("%(field)s must be text.", code="invalid_caption", field=field)
    text = one_line(value)
    if len(text) > limit:
        raise Unprocessable("%(field)s is at most %(limit)s characters.", code="caption_too_long",
                            field=field, limit=limit)
    return text


async def history(session: AsyncSession, clip: Clip) -> list[tuple[ClipEdit, str | None]]:
    rows = await session.execute(
        select(ClipEdit, User.display_name).outerjoin(User, User.id == ClipEdit.editor_id)
        .where(ClipEdit.clip_id == clip.id).order_by(ClipEdit.id.desc()))
    return [(e, name) for e, name in rows]
