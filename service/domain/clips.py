"""Member stories: created with consent, followed through their states, withdrawn at will."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip, Prompt, utcnow
from service.domain import audit
from service.domain.clip_state import ClipState, transition
from service.domain.communities import Access, current_release
from service.errors import Conflict, NotFound, Unprocessable


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
                     source: str = "upload") -> Clip:
    """A new clip in `uploading`, with the member's consent to the current release recorded."""
    release = await current_release(session, access.community)
    if release_version in (None, ""):
        raise Unprocessable("Accept the community's release before sharing a story.",
                            code="consent_required",
                            hint="Read the release on the story page and tick the box.")
    if str(release_version) != str(release.version):
        raise Conflict("The community's release text has changed since you read it.",
                       code="release_changed",
                       hint=f"Read version {release.version} and accept it again.")
    now = utcnow()
    clip = Clip(id=uuid.uuid4().hex, community_id=access.community.id,
                member_id=access.user.id, prompt_id=prompt.id if prompt else None,
                title=title, filename=filename, source=source, state=ClipState.uploading,
                size=0, facts={}, release_id=release.id, release_version=release.version,
                release_sha256=release.sha256, consented_at=now)
    session.add(clip)
    audit.record(session, action="consent.given", subject_type="clip", subject_id=clip.id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"release_version": release.version, "release_sha256": release.sha256})
    return clip


async def member_clip(session: AsyncSession, access: Access, clip_id: str) -> Clip:
    clip = await session.get(Clip, clip_id)
    if clip is None or clip.community_id != access.community.id \
            or clip.member_id != access.user.id:
        raise NotFound("No such story.", code="clip_not_found")
    return clip


async def clips_of_member(session: AsyncSession, access: Access) -> list[Clip]:
    rows = await session.scalars(select(Clip).where(
        Clip.community_id == access.community.id, Clip.member_id == access.user.id)
        .order_by(Clip.created_at.desc()))
    return list(rows)


async def withdraw(session: AsyncSession, access: Access, clip: Clip) -> None:
    """The member takes back consent: the clip leaves every use and its media goes."""
    transition(clip, ClipState.withdrawn)
    audit.record(session, action="consent.withdrawn", subject_type="clip", subject_id=clip.id,
                 actor_id=access.user.id, community_id=clip.community_id)
    await after_withdrawal(session, clip)


async def after_withdrawal(session: AsyncSession, clip: Clip) -> None:
    """What withdrawal sets off beyond the clip itself; reels that used the clip hook in here.

    Deleting the media is a job the caller enqueues after commit (`service.jobs.purge_clip`)."""



async def record_probe(session: AsyncSession, clip: Clip, *, sha256: str,
                       facts: dict[str, Any]) -> None:
    """Facts of a source that passed the story rules; the clip waits for its rendition."""
    clip.sha256 = sha256
    clip.facts = facts
    clip.updated_at = utcnow()
    audit.record(session, action="clip.probed", subject_type="clip", subject_id=clip.id,
                 actor_id=None, community_id=clip.community_id,
                 data={"sha256": sha256, "duration": facts.get("duration")})


async def refuse(session: AsyncSession, clip: Clip, *, code: str, message: str, hint: str,
                 facts: dict[str, Any] | None = None, sha256: str | None = None) -> None:
    """The source is not a story we can take: `invalid`, with a reason the member can act on."""
    transition(clip, ClipState.invalid, reason=message, hint=hint)
    if facts is not None:
        clip.facts = facts
    if sha256 is not None:
        clip.sha256 = sha256
    audit.record(session, action="clip.invalid", subject_type="clip", subject_id=clip.id,
                 actor_id=None, community_id=clip.community_id, data={"code": code})
