"""Live sessions: scheduled by hosts, listed for members, published with a token (WHIP)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service import effects
from service.db.models import Community, LiveEvent, LiveSession, User, utcnow
from service.domain import audit, communities, deliveries, notifications, recording_state
from service.domain.communities import Access
from service.domain.live_state import LiveState, transition
from service.domain.recording_state import RecordingState
from service.domain.roles import Permission
from service.domain.text import one_line
from service.errors import ApiError, Gone, NotFound, Unauthorized, Unprocessable
from service.i18n import N_

# The recording terms a host accepts by going live; the consent basis of the highlights cut
# from the recording. A change of wording is a new version.
TERMS_VERSION = 1
# shown in the host's language; the English text is the version whose hash is kept
TERMS = N_("This session is recorded. As its host you agree that the community's moderators "
           "may cut moments of the recording into clips and publish them in the community's "
           "highlight reels. You can withdraw any such clip from My stories at any time.")
TERMS_SHA256 = hashlib.sha256(TERMS.encode()).hexdigest()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _when(raw: object) -> datetime:
    if raw in (None, ""):
        return utcnow()
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable("starts_at is an ISO 8601 date and time.",
                            code="invalid_starts_at") from None
    if when.tzinfo is None:
        raise Unprocessable("starts_at needs a time zone (e.g. Z or +07:00).",
                            code="invalid_starts_at")
    if when < utcnow() - timedelta(days=1):
        raise Unprocessable("starts_at is in the past.", code="invalid_starts_at")
    return when


async def schedule(session: AsyncSession, access: Access, *, title: object,
                   description: object = "", starts_at: object = None) -> tuple[LiveSession, str]:
    """A new session and its publish token (shown once; only its hash is kept)."""
    name = one_line(title, 120)
    if len(name) < 3:
        raise Unprocessable("Give the session a title of at least 3 characters.",
                            code="title_required")
    token = "kpub_" + secrets.token_urlsafe(32)
    live = LiveSession(id=uuid.uuid4().hex, community_id=access.community.id,
                       host_id=access.user.id, title=name,
                       description=str(description or "")[:2000], starts_at=_when(starts_at),
                       state=LiveState.scheduled, publish_token_hash=_hash(token),
                       recording_state=RecordingState.none)
    session.add(live)
    await notifications.session_changed(session, live, "session_scheduled")
    audit.record(session, action="live.scheduled", subject_type="live", subject_id=live.id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"title": name})
    return live, token


async def of_community(session: AsyncSession, access: Access,
                       include_ended: bool = False) -> list[LiveSession]:
    query = select(LiveSession).where(LiveSession.community_id == access.community.id)
    if not include_ended:
        query = query.where(LiveSession.state != LiveState.ended)
    rows = await session.scalars(query.order_by(LiveSession.starts_at))
    return list(rows)


async def past(session: AsyncSession, access: Access, limit: int = 10) -> list[LiveSession]:
    """Ended sessions, latest first (their recordings and highlights)."""
    rows = await session.scalars(select(LiveSession).where(
        LiveSession.community_id == access.community.id,
        LiveSession.state == LiveState.ended).order_by(LiveSession.ended_at.desc()).limit(limit))
    return list(rows)


async def get(session: AsyncSession, access: Access, session_id: str) -> LiveSession:
    live = await session.get(LiveSession, session_id)
    if live is None or live.community_id != access.community.id:
        raise NotFound("No such live session.", code="session_not_found")
    return live


async def visible(session: AsyncSession, user: User,
                  session_id: str) -> tuple[LiveSession, Access]:
    """A session of one of the user's communities, with their standing there. Anyone else
    learns nothing: an unknown session and another community's look the same (404)."""
    live = await session.get(LiveSession, session_id)
    community = await session.get(Community, live.community_id) if live else None
    try:
        if live is None or community is None:
            raise NotFound("No such live session.")
        return live, await communities.require(session, user, community.slug, Permission.view)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise NotFound("No such live session.", code="session_not_found") from None


async def by_publish_token(session: AsyncSession, session_id: str,
                           token: str | None) -> LiveSession:
    """The session a WHIP request may publish to: the right token, not ended. Without the
    right token an unknown session and an existing one look the same (401)."""
    live = await session.get(LiveSession, session_id)
    if live is None or not token or \
            not secrets.compare_digest(_hash(token), live.publish_token_hash):
        raise Unauthorized("That publish token doesn't open this session.",
                           code="invalid_token",
                           hint="Copy the stream key from the host studio again.")
    if live.state == LiveState.ended:
        raise Gone("This session has ended.", code="session_ended")
    return live


async def go_live(session: AsyncSession, session_id: str) -> LiveSession | None:
    live = await session.get(LiveSession, session_id)
    if live is None or live.state != LiveState.scheduled:
        return live
    transition(live, LiveState.live)
    live.terms_version, live.terms_sha256 = TERMS_VERSION, TERMS_SHA256
    live.terms_accepted_at = live.started_at
    await notifications.session_changed(session, live, "session_live")
    audit.record(session, action="live.started", subject_type="live", subject_id=live.id,
                 actor_id=live.host_id, community_id=live.community_id,
                 data={"terms_version": TERMS_VERSION, "terms_sha256": TERMS_SHA256})
    await deliveries.emit(session, live.community_id, "live.started", deliveries.live_data(live))
    return live


async def end(session: AsyncSession, live: LiveSession, actor_id: int | None) -> None:
    transition(live, LiveState.ended)
    audit.record(session, action="live.ended", subject_type="live", subject_id=live.id,
                 actor_id=actor_id, community_id=live.community_id)
    await deliveries.emit(session, live.community_id, "live.ended", deliveries.live_data(live))


async def new_publish_token(session: AsyncSession, access: Access, live: LiveSession) -> str:
    token = "kpub_" + secrets.token_urlsafe(32)
    live.publish_token_hash = _hash(token)
    audit.record(session, action="live.token_reset", subject_type="live", subject_id=live.id,
                 actor_id=access.user.id, community_id=live.community_id)
    return token


async def recording_stored(session: AsyncSession, session_id: str, key: str) -> None:
    """The recording is in storage: a job makes its rendition (`processing`)."""
    live = await session.get(LiveSession, session_id)
    if live is None:
        return
    recording_state.transition(live, RecordingState.processing)
    live.recording_key = key
    audit.record(session, action="live.recorded", subject_type="live", subject_id=live.id,
                 actor_id=None, community_id=live.community_id, data={"key": key})
    effects.queue(session, "render_recording", live.id)


async def claim_recording(session: AsyncSession, session_id: str) -> str | None:
    """The rendition job's claim: the recording's key, if it is to be made (a job retried
    after failing takes it up again)."""
    live = await session.get(LiveSession, session_id)
    if live is None or live.recording_key is None:
        return None
    if live.recording_state == RecordingState.failed:
        recording_state.transition(live, RecordingState.processing)
    return live.recording_key if live.recording_state == RecordingState.processing else None


async def recording_done(session: AsyncSession, session_id: str, ok: bool) -> None:
    """The rendition is stored (then the moments are found), or could not be made."""
    live = await session.get(LiveSession, session_id)
    if live is None or live.recording_state != RecordingState.processing:
        return
    recording_state.transition(live, RecordingState.ready if ok else RecordingState.failed)
    if ok:
        effects.queue(session, "find_moments", live.id)


async def add_event(session: AsyncSession, session_id: str, kind: str, user_id: int,
                    body: str, at_ms: int) -> int:
    """A chat message or reaction, kept on the recording's timeline (for highlights)."""
    event = LiveEvent(session_id=session_id, user_id=user_id, kind=kind, body=body,
                      at_ms=at_ms)
    session.add(event)
    await session.flush()
    return event.id


async def delete_event(session: AsyncSession, session_id: str, event_id: int,
                       actor_id: int) -> None:
    event = await session.get(LiveEvent, event_id)
    if event is None or event.session_id != session_id or event.kind != "chat":
        return
    event.deleted_at = utcnow()
    live = await session.get(LiveSession, session_id)
    audit.record(session, action="live.message_deleted", subject_type="live",
                 subject_id=session_id, actor_id=actor_id,
                 community_id=live.community_id if live else None, data={"id": event_id})
