"""Member stories: created with consent, followed through their states, withdrawn at will."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service import effects, i18n, jobs
from service.db.models import Clip, Prompt, utcnow
from service.domain import audit, deliveries, reels
from service.domain.clip_state import WORKING, ClipState, transition
from service.domain.communities import Access, current_release
from service.domain.paging import Page
from service.errors import Conflict, NotFound, Unprocessable
from service.events import clip_changed


async def open_prompt(session: AsyncSession, access: Access, prompt_id: object) -> Prompt | None:
    if prompt_id in (None, ""):
        return None
    try:
        number = int(str(prompt_id))
    except ValueError:
        raise Unprocessable("prompt must be a prompt id.", code="invalid_prompt") from None
    prompt = await session.get(Prompt, number)
    if prompt is None or prompt.community_id != access.community.id:
        raise NotFound("That story prompt doesn't exist here.", code="prompt_not_found")
    if prompt.closed_at is not None:
        raise Conflict("That story prompt is closed.", code="prompt_closed",
                       hint="Pick another prompt on the community page.")
    return prompt


async def start_clip(session: AsyncSession, access: Access, *, release_version: object,
                     title: str, filename: str, prompt: Prompt | None,
                     source: str = "upload", release_language: object = None) -> Clip:
    """A new clip in `uploading`, with the member's consent to the current release recorded:
    the version, language and hash of the text they read (the community's language when the
    client names none)."""
    if release_language not in (None, "") and not i18n.is_language(release_language):
        raise Unprocessable("release_language must be one of %(choices)s.",
                            code="invalid_language", choices=", ".join(i18n.LANGUAGES))
    release = await current_release(session, access.community,
                                    str(release_language or access.community.language))
    if release_version in (None, ""):
        raise Unprocessable("Accept the community's release before sharing a story.",
                            code="consent_required",
                            hint="Read the release on the story page and tick the box.")
    if str(release_version) != str(release.version):
        raise Conflict("The community's release text has changed since you read it.",
                       code="release_changed",
                       hint="Read version %(version)s and accept it again.",
                       version=release.version)
    now = utcnow()
    clip = Clip(id=uuid.uuid4().hex, community_id=access.community.id,
                member_id=access.user.id, prompt_id=prompt.id if prompt else None,
                title=title, filename=filename, source=source, state=ClipState.uploading,
                size=0, facts={}, release_id=release.id, release_version=release.version,
                release_sha256=release.sha256, release_language=release.language,
                consented_at=now)
    session.add(clip)
    audit.record(session, action="consent.given", subject_type="clip", subject_id=clip.id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"release_version": release.version, "release_language": release.language,
                       "release_sha256": release.sha256})
    return clip


async def member_clip(session: AsyncSession, access: Access, clip_id: str) -> Clip:
    clip = await session.get(Clip, clip_id)
    if clip is None or clip.community_id != access.community.id \
            or clip.member_id != access.user.id:
        raise NotFound("No such story.", code="clip_not_found")
    return clip


async def clips_of_member(session: AsyncSession, access: Access,
                          page: Page | None = None) -> list[Clip]:
    """Newest first; with a page, that page's window (one row more tells that more follow)."""
    query = select(Clip).where(
        Clip.community_id == access.community.id, Clip.member_id == access.user.id,
    ).order_by(Clip.created_at.desc(), Clip.id)
    return list(await session.scalars(page.window(query) if page else query))


async def withdraw(session: AsyncSession, access: Access, clip: Clip) -> None:
    """The member takes back consent: the clip leaves every use (its reels render again
    without it) and its media is deleted by a job."""
    transition(clip, ClipState.withdrawn)
    audit.record(session, action="consent.withdrawn", subject_type="clip", subject_id=clip.id,
                 actor_id=access.user.id, community_id=clip.community_id)
    await reels.drop_clip(session, clip, why="consent.withdrawn")
    effects.queue(session, "purge_clip", clip.id)
    await deliveries.emit(session, clip.community_id, "clip.withdrawn",
                          deliveries.clip_data(clip))
    clip_changed(session, clip)


async def start_processing(session: AsyncSession, clip_id: str,
                           deadline_seconds: int) -> Clip | None:
    """Claim a clip for ingest: `uploaded`/`failed` -> `processing`, or resume one that a dead
    worker left in `processing`. None if there is nothing to do."""
    clip = await session.get(Clip, clip_id)
    if clip is None or clip.state not in (ClipState.uploaded, ClipState.failed,
                                          ClipState.processing):
        return None
    if clip.state != ClipState.processing:
        transition(clip, ClipState.processing)
    clip.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
    return clip


async def finish_rendition(session: AsyncSession, clip_id: str, *, version: int, sha256: str,
                           facts: dict[str, Any], rendition: dict[str, Any]) -> Clip | None:
    """The rendition's objects are stored under `version`: make them current and send the
    clip to review (a live moment, accepted already, is approved). None if the clip left
    `processing` meanwhile (e.g. withdrawn)."""
    clip = await session.get(Clip, clip_id)
    if clip is None or clip.state != ClipState.processing:
        return None
    clip.version, clip.sha256, clip.facts, clip.rendition = version, sha256, facts, rendition
    clip.deadline_at = None
    transition(clip, ClipState.ready_for_review)
    audit.record(session, action="clip.ready", subject_type="clip", subject_id=clip.id,
                 actor_id=None, community_id=clip.community_id,
                 data={"version": version, "sha256": sha256})
    if clip.consent_basis == "session_terms" and clip.reviewed_by is not None:
        # a live moment: the moderator's acceptance was the review
        transition(clip, ClipState.approved)
        audit.record(session, action="clip.approved", subject_type="clip", subject_id=clip.id,
                     actor_id=clip.reviewed_by, community_id=clip.community_id,
                     data={"by": "moment.accepted"})
    await deliveries.emit(session, clip.community_id, (
        "clip.approved" if clip.state == ClipState.approved else "clip.ready_for_review"),
        deliveries.clip_data(clip))
    clip_changed(session, clip)
    return clip


async def fail(session: AsyncSession, clip_id: str, error: str) -> Clip | None:
    """Out of retries: `failed`, which an operator can retry."""
    clip = await session.get(Clip, clip_id)
    if clip is None or clip.state != ClipState.processing:
        return None
    transition(clip, ClipState.failed, reason="Something went wrong preparing this video.",
               hint="It is not being retried by itself: send the video again, or ask the "
                    "community's admin to retry it.")
    clip.deadline_at = None
    audit.record(session, action="clip.failed", subject_type="clip", subject_id=clip.id,
                 actor_id=None, community_id=clip.community_id, data={"error": error[:500]})
    clip_changed(session, clip)
    return clip


async def to_heavy_lane(session: AsyncSession, clip_id: str, plan: str) -> Clip | None:
    """A clip whose probe (or a timeout) puts it above the processing budget moves to the
    heavy lane with the plan it needs; it stays `processing`, with the lane's deadline."""
    clip = await session.get(Clip, clip_id)
    if clip is None or clip.state != ClipState.processing:
        return None
    clip.deadline_at = utcnow() + timedelta(seconds=jobs.HEAVY_DEADLINE)
    effects.queue(session, "ingest_heavy", clip.id, plan)
    return clip


async def requeue_overdue(session: AsyncSession, deadline_seconds: int,
                          limit: int = 100) -> int:
    """Clips in a working state past their deadline (their job was lost or its worker died)
    go to ingest again, each with a fresh deadline so that one sweep re-queues it once."""
    rows = await session.scalars(select(Clip).where(
        Clip.state.in_([str(s) for s in WORKING]), Clip.deadline_at.is_not(None),
        Clip.deadline_at < utcnow()).order_by(Clip.deadline_at).limit(limit))
    stuck = list(rows)
    for clip in stuck:
        clip.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
        effects.queue(session, "ingest_clip", clip.id)
    return len(stuck)


async def refuse(session: AsyncSession, clip: Clip, *, code: str, message: str, hint: str,
                 args: dict[str, Any] | None = None, facts: dict[str, Any] | None = None,
                 sha256: str | None = None) -> None:
    """The source is not a story we can take: `invalid`, with a reason the member can act on."""
    transition(clip, ClipState.invalid, reason=message, hint=hint, args=args)
    clip.deadline_at = None
    if facts is not None:
        clip.facts = facts
    if sha256 is not None:
        clip.sha256 = sha256
    audit.record(session, action="clip.invalid", subject_type="clip", subject_id=clip.id,
                 actor_id=None, community_id=clip.community_id, data={"code": code})
    clip_changed(session, clip)
