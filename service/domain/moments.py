"""Highlights of an ended live session: moments proposed by the finder (`media.moments`) from
the recording's signals and the session's reactions and chat, then accepted (cut into a clip
whose consent basis is the host's recording terms), adjusted or discarded by moderators.

Finding again is idempotent: proposals are replaced, but a decided moment stays, and no new
proposal may cover one (so an accepted moment never yields a second clip).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from media.moments import Moment, Rules, Signals, find
from service import effects, i18n
from service.db.models import Clip, LiveEvent, LiveMoment, LiveSession, utcnow
from service.domain import audit, deliveries, finder_state
from service.domain.clip_state import ClipState
from service.domain.communities import Access
from service.domain.finder_state import FinderState
from service.domain.live_state import LiveState
from service.domain.moment_state import MomentState, transition
from service.domain.recording_state import RecordingState
from service.errors import Conflict, NotFound, Unprocessable
from service.i18n import N_
from service.settings import Settings

FPS = 30  # clips are cut on the rendition's frame grid


@dataclass(frozen=True)
class Limits:
    """From settings: the finder's rules, and the longest clip a moment may become."""
    top: int
    min_seconds: int
    max_seconds: int
    clip_max_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        low, high = settings.moment_seconds
        return cls(top=settings.moments_per_session, min_seconds=low, max_seconds=high,
                   clip_max_seconds=settings.upload_max_seconds)

    @property
    def rules(self) -> Rules:
        return Rules(top=self.top, min_seconds=self.min_seconds, max_seconds=self.max_seconds)


def on_frame(ms: float) -> int:
    """`ms` moved to the nearest frame boundary (in whole milliseconds)."""
    return round(round(ms * FPS / 1000) * 1000 / FPS)


async def ended_session(session: AsyncSession, access: Access, session_id: str) -> LiveSession:
    live = await session.get(LiveSession, session_id)
    if live is None or live.community_id != access.community.id:
        raise NotFound("No such live session.", code="session_not_found")
    return live


def _ready(live: LiveSession) -> None:
    if live.state != LiveState.ended:
        raise Conflict("Highlights come once the session has ended.", code="session_not_ended")
    if live.recording_state != RecordingState.ready:
        raise Conflict("The session's recording isn't ready yet.", code="recording_not_ready",
                       hint="It is being prepared; this page updates when it is.")


def _finding(live: LiveSession) -> None:
    if live.moments_state != FinderState.finding:  # asked twice: one search
        finder_state.transition(live, FinderState.finding)


async def request_find(session: AsyncSession, access: Access, live: LiveSession) -> None:
    """A moderator asks for the moments again (after new reactions or changed settings)."""
    _ready(live)
    _finding(live)
    audit.record(session, action="moments.requested", subject_type="live", subject_id=live.id,
                 actor_id=access.user.id, community_id=live.community_id)
    effects.queue(session, "find_moments", live.id)


async def claim_finding(session: AsyncSession, session_id: str) -> LiveSession | None:
    """The finder job's claim: an ended session with its rendition ready."""
    live = await session.get(LiveSession, session_id)
    if live is None or live.state != LiveState.ended \
            or live.recording_state != RecordingState.ready:
        return None
    _finding(live)
    return live


async def finding_failed(session: AsyncSession, session_id: str) -> None:
    live = await session.get(LiveSession, session_id)
    if live is not None and live.moments_state == FinderState.finding:
        finder_state.transition(live, FinderState.failed)


async def events(session: AsyncSession, session_id: str) -> tuple[list[float], list[float]]:
    """When reactions and chat messages came, in seconds of the recording (deleted messages
    still count: the room reacted to them)."""
    rows = await session.execute(select(LiveEvent.kind, LiveEvent.at_ms).where(
        LiveEvent.session_id == session_id))
    reactions: list[float] = []
    messages: list[float] = []
    for kind, at_ms in rows:
        (reactions if kind == "reaction" else messages).append(at_ms / 1000)
    return reactions, messages


async def store_proposals(session: AsyncSession, session_id: str, signals: dict[str, Any],
                          limits: Limits) -> list[LiveMoment]:
    """Save the recording's signals, run the finder, and replace the proposals with its
    moments, except those covering an accepted or discarded moment."""
    live = await session.get(LiveSession, session_id)
    if live is None:
        return []
    live.signals = signals
    reactions, messages = await events(session, session_id)
    found = find(Signals(duration=float(signals["duration"]), reactions=reactions,
                         messages=messages, loudness=[tuple(p) for p in signals["loudness"]],
                         scenes=signals["scenes"]), limits.rules)
    kept = list(await session.scalars(select(LiveMoment).where(
        LiveMoment.session_id == session_id)))
    decided = [m for m in kept if m.state != MomentState.proposed]
    for old in kept:
        if old.state == MomentState.proposed:
            await session.delete(old)
    added = [_row(session_id, m) for m in found if not any(_covers(m, d) for d in decided)]
    session.add_all(added)
    finder_state.transition(live, FinderState.ready)
    audit.record(session, action="moments.found", subject_type="live", subject_id=live.id,
                 actor_id=None, community_id=live.community_id,
                 data={"proposed": len(added), "kept": len(decided)})
    await session.flush()
    for moment in added:
        await deliveries.emit(session, live.community_id, "moment.proposed",
                              deliveries.moment_data(moment))
    return added


def _row(session_id: str, moment: Moment) -> LiveMoment:
    return LiveMoment(session_id=session_id, start_ms=on_frame(moment.start * 1000),
                      end_ms=on_frame(moment.end * 1000), score=moment.score, why=moment.why,
                      why_args=dict(moment.facts) or None, state=MomentState.proposed)


def told_why(moment: LiveMoment, speech: i18n.Speech) -> str:
    """Why the finder proposed a moment, in the reader's words."""
    facts = moment.why_args
    if not facts:
        return moment.why
    counted = []
    for key, one, many in (("reactions", N_("1 reaction"), N_("%(n)s reactions")),
                           ("messages", N_("1 message"), N_("%(n)s messages"))):
        n = int(facts.get(key, 0))
        if n:
            counted.append(speech.text(one if n == 1 else many, {"n": n}))
    parts = []
    if counted:
        what = counted[0] if len(counted) == 1 else speech.text(
            "%(first)s and %(second)s", {"first": counted[0], "second": counted[1]})
        parts.append(speech.text("%(what)s in %(length_seconds)s",
                                 {"what": what, "length_seconds": int(facts.get("seconds", 0))}))
    if facts.get("loud_db"):
        parts.append(speech.text("a loud moment (%(db)s dB above the usual)",
                                 {"db": int(facts["loud_db"])}))
    return ", ".join(parts) or speech.text("activity")


def _covers(moment: Moment, decided: LiveMoment) -> bool:
    """The new moment is mostly the decided one: over half of the shorter overlaps."""
    start, end = moment.start * 1000, moment.end * 1000
    overlap = min(end, decided.end_ms) - max(start, decided.start_ms)
    return overlap > 0.5 * min(end - start, decided.end_ms - decided.start_ms)


async def of_session(session: AsyncSession, live: LiveSession) -> list[tuple[LiveMoment,
                                                                            Clip | None]]:
    rows = await session.execute(
        select(LiveMoment, Clip).outerjoin(Clip, Clip.id == LiveMoment.clip_id)
        .where(LiveMoment.session_id == live.id).order_by(LiveMoment.start_ms))
    return [(m, c) for m, c in rows]


async def _moment(session: AsyncSession, live: LiveSession, moment_id: int) -> LiveMoment:
    moment = await session.get(LiveMoment, moment_id)
    if moment is None or moment.session_id != live.id:
        raise NotFound("No such moment in this session.", code="moment_not_found")
    return moment


def _bounds(live: LiveSession, moment: LiveMoment, start: object, end: object,
            limits: Limits) -> tuple[int, int]:
    duration_ms = int(float((live.signals or {}).get("duration", 0)) * 1000)
    values = []
    for name, raw, default in (("start_ms", start, moment.start_ms),
                               ("end_ms", end, moment.end_ms)):
        if raw is None:
            values.append(default)
            continue
        if (isinstance(raw, bool) or not isinstance(raw, int | float)
                or not math.isfinite(raw) or not 0 <= raw <= 10**10):
            raise Unprocessable("%(name)s is a number of milliseconds.", code="invalid_bounds",
                                name=name)
        values.append(on_frame(float(raw)))
    first, last = values
    if not 0 <= first < last <= duration_ms + 1000 / FPS:
        raise Unprocessable("The moment must lie within the recording, its start before its "
                            "end.", code="invalid_bounds")
    if last - first < 1000:
        raise Unprocessable("A moment lasts at least 1 second.", code="moment_too_short")
    if last - first > limits.clip_max_seconds * 1000:
        raise Unprocessable("A moment lasts at most %(max_seconds)s.",
                            max_seconds=limits.clip_max_seconds,
                            code="moment_too_long")
    return first, min(last, on_frame(duration_ms))


async def accept(session: AsyncSession, access: Access, live: LiveSession, moment_id: int,
                 limits: Limits, *, start_ms: object = None, end_ms: object = None,
                 deadline_seconds: int) -> tuple[Clip, bool]:
    """Accept a moment (optionally adjusted): a new clip in `uploaded`, to be cut from the
    recording and prepared by ingest. Accepting again returns the same clip. The bool says
    whether the clip is new."""
    _ready(live)
    moment = await _moment(session, live, moment_id)
    if moment.state == MomentState.accepted and moment.clip_id:
        clip = await session.get(Clip, moment.clip_id)
        if clip is not None:
            return clip, False
    if live.terms_version is None or live.terms_sha256 is None or live.terms_accepted_at is None:
        raise Conflict("This session has no recording terms on record, so its moments can't "
                       "become clips.", code="no_recording_terms")
    first, last = _bounds(live, moment, start_ms, end_ms, limits)
    adjusted = (first, last) != (moment.start_ms, moment.end_ms)
    original = {"start_ms": moment.start_ms, "end_ms": moment.end_ms}
    moment.start_ms, moment.end_ms = first, last
    transition(moment, MomentState.accepted, access.user.id)
    now = utcnow()
    at = first // 1000
    clip = Clip(id=uuid.uuid4().hex, community_id=live.community_id, member_id=live.host_id,
                prompt_id=None, title=f"{live.title} at {at // 60}:{at % 60:02d}"[:120],
                filename="", source="live", state=ClipState.uploaded, size=0, facts={},
                consent_basis="session_terms", release_id=None,
                release_version=live.terms_version, release_sha256=live.terms_sha256,
                consented_at=live.terms_accepted_at, reviewed_by=access.user.id,
                reviewed_at=now, deadline_at=now + timedelta(seconds=deadline_seconds))
    session.add(clip)
    await session.flush()
    moment.clip_id = clip.id
    audit.record(session, action="moment.accepted", subject_type="live", subject_id=live.id,
                 actor_id=access.user.id, community_id=live.community_id,
                 data={"moment": moment.id, "clip": clip.id, "start_ms": first,
                       "end_ms": last, **({"proposed": original} if adjusted else {})})
    audit.record(session, action="consent.session_terms", subject_type="clip",
                 subject_id=clip.id, actor_id=live.host_id, community_id=live.community_id,
                 data={"terms_version": live.terms_version, "terms_sha256": live.terms_sha256,
                       "session": live.id})
    effects.queue(session, "ingest_clip", clip.id)
    return clip, True


async def discard(session: AsyncSession, access: Access, live: LiveSession,
                  moment_id: int) -> LiveMoment:
    moment = await _moment(session, live, moment_id)
    transition(moment, MomentState.discarded, access.user.id)
    audit.record(session, action="moment.discarded", subject_type="live", subject_id=live.id,
                 actor_id=access.user.id, community_id=live.community_id,
                 data={"moment": moment.id})
    return moment


async def restore(session: AsyncSession, access: Access, live: LiveSession,
                  moment_id: int) -> LiveMoment:
    moment = await _moment(session, live, moment_id)
    transition(moment, MomentState.proposed, access.user.id)
    audit.record(session, action="moment.restored", subject_type="live", subject_id=live.id,
                 actor_id=access.user.id, community_id=live.community_id,
                 data={"moment": moment.id})
    return moment


async def cut_of(session: AsyncSession, clip_id: str) -> tuple[str, int, int] | None:
    """For a clip cut from a live moment: (session id, start ms, end ms)."""
    moment = await session.scalar(select(LiveMoment).where(LiveMoment.clip_id == clip_id))
    return (moment.session_id, moment.start_ms, moment.end_ms) if moment else None


def activity(signals: dict[str, Any] | None, reactions: list[float],
             messages: list[float]) -> dict[str, list[float]]:
    """Per second of the recording, for the moderators' timeline graph: reactions, messages,
    and the loudest momentary loudness (LUFS, None where silent)."""
    if not signals:
        return {"reactions": [], "messages": [], "loudness": []}
    bins = max(int(float(signals["duration"]) + 0.999), 1)
    counts = {"reactions": [0.0] * bins, "messages": [0.0] * bins}
    for name, times in (("reactions", reactions), ("messages", messages)):
        for t in times:
            if 0 <= t < bins:
                counts[name][int(t)] += 1
    loud: list[float] = [-70.0] * bins
    for t, lufs in signals["loudness"]:
        if 0 <= t < bins:
            loud[int(t)] = max(loud[int(t)], float(lufs))
    return {**counts, "loudness": loud}
