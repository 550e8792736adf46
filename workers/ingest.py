"""Ingest: every accepted source becomes one web rendition, a poster and a filmstrip.

Thin by design: load -> media operations -> store -> advance state. The version of the
outputs is fixed before any work (current + 1), so a rerun after a crash writes the same
keys again and the clip never points at two sets of outputs.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from media import budget
from media.cut import cut
from media.normalise import RenditionSpec
from media.probe import MediaInfo
from media.run import MediaTimeout
from service import jobs as service_jobs
from service.db.models import Clip, Prompt
from service.domain import admission, clips, moments
from service.domain.admission import Admission
from service.domain.clip_state import ClipState
from service.domain.story_rules import Keep, Refusal, StoryLimits
from service.events import clip_channel, encode
from service.storage.keys import clip_source, clip_version, file, live_rendition
from workers import rendition
from workers.context import JobContext, context
from workers.running import failing, reporter


@dataclass(frozen=True)
class Claimed:
    id: str
    next_version: int
    prompt_seconds: int | None
    community_id: int
    member_id: int
    cut: tuple[str, int, int] | None  # a live moment: (session, start ms, end ms) of its recording
    keep: Keep | None = None  # the part of its source the member chose to keep


def ingest_clip(clip_id: str) -> str:
    """The normal lane: probe, then prepare the clip here when it is within the processing
    budget, or hand it to the heavy lane with the plan it needs."""
    return _run(clip_id, None)


def ingest_heavy(clip_id: str, plan: str) -> str:
    """The heavy lane: a clip above the budget, prepared on `plan` (or a cheaper one)."""
    return _run(clip_id, plan)


def _run(clip_id: str, plan: str | None) -> str:
    ctx = context()
    deadline = ctx.settings.ingest_deadline_seconds if plan is None else \
        service_jobs.HEAVY_DEADLINE
    claimed = ctx.db(lambda session: _claim(session, clip_id, deadline))
    if claimed is None:
        return "skipped"
    scratch = ctx.scratch(f"ingest-{clip_id}")
    try:
        with failing(lambda error: ctx.db(lambda session: clips.fail(session, clip_id, error))):
            return _ingest(ctx, claimed, scratch, plan)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        rules = Admission.from_settings(ctx.settings)  # whoever waited may go now
        ctx.db(lambda session: admission.admit_waiting(session, rules, claimed.community_id))


async def _claim(session: AsyncSession, clip_id: str, deadline_seconds: int) -> Claimed | None:
    """The member's page hears of `processing` from the first progress report, after commit."""
    clip = await clips.start_processing(session, clip_id, deadline_seconds)
    if clip is None:
        return None
    prompt = await session.get(Prompt, clip.prompt_id) if clip.prompt_id else None
    cut = await moments.cut_of(session, clip.id) if clip.source == "live" else None
    return Claimed(clip.id, clip.version + 1, prompt.max_seconds if prompt else None,
                   clip.community_id, clip.member_id, cut,
                   Keep.from_ms(clip.keep_from_ms, clip.keep_to_ms))


def _ingest(ctx: JobContext, claimed: Claimed, scratch: Path, lane_plan: str | None) -> str:
    settings = ctx.settings
    if claimed.cut is not None and not ctx.store.exists(clip_source(claimed.id)):
        _cut_moment(ctx, claimed.id, claimed.cut, scratch)
    source = scratch / "source"
    sha256 = ctx.fetch(clip_source(claimed.id), source)
    limits = StoryLimits.from_settings(settings, claimed.prompt_seconds)
    info, refusal = rendition.check(source, limits, settings.media_timeout_seconds, claimed.keep)
    if refusal is not None or info is None:
        return _refuse(ctx, claimed, refusal or rendition.UNREADABLE, info, sha256)
    plan = budget.choose(info, budget=settings.processing_budget,
                         ceiling=settings.processing_ceiling, max_seconds=limits.max_seconds)
    if plan is None:
        return _refuse(ctx, claimed, too_heavy(info), info, sha256)
    if lane_plan is not None:  # the heavy lane keeps to the plan it was handed
        plan = dataclasses.replace(plan, name=max(plan.name, lane_plan, key=budget.PLANS.index))
    elif plan.heavy:
        return _to_heavy_lane(ctx, claimed, plan.name)
    version = claimed.next_version
    seconds = min(info.duration, limits.max_seconds)
    base = RenditionSpec(long_side=settings.rendition_long_side)
    while True:
        try:
            made = rendition.render(  # write first ...
                ctx.store, source, info, spec=plan.spec(base), max_seconds=limits.max_seconds,
                timeout=plan.timeout(settings.media_timeout_seconds, seconds),
                folder=clip_version(claimed.id, version), on_progress=_progress(ctx, claimed),
                start=claimed.keep.start if claimed.keep else 0)
            break
        except MediaTimeout:  # never retried blindly: a cheaper plan once, or a reason
            cheaper = plan.cheaper()
            if cheaper is None:
                return _refuse(ctx, claimed, TOO_SLOW_TO_PREPARE, info, sha256)
            if lane_plan is None:
                return _to_heavy_lane(ctx, claimed, cheaper.name)
            plan = cheaper
    finished = ctx.db(lambda session: clips.finish_rendition(  # ... then commit
        session, claimed.id, version=version, sha256=sha256, facts=made.facts,
        rendition=made.rendition))
    if finished is None:  # withdrawn while we worked: leave nothing behind
        ctx.store.delete_prefix(clip_version(claimed.id, version))
        return "withdrawn"
    return str(finished.state)


def too_heavy(info: MediaInfo) -> Refusal:
    video = info.video
    return Refusal("too_heavy", "This video (%(size)s at %(fps)s fps, %(length_seconds)s) is more "
                   "than we can prepare.",
                   "Record at 4K 30 fps or less (or send a shorter video) and try again.",
                   {"size": f"{video.width}x{video.height}" if video else "?",
                    "fps": round(video.fps or 0) if video else 0,
                    "length_seconds": round(info.duration)})


TOO_SLOW_TO_PREPARE = Refusal(
    "too_slow", "This video took too long to prepare, even on our fastest settings.",
    "Export it again at 1080p 30 fps (or send a shorter part) and try again.")


def _to_heavy_lane(ctx: JobContext, claimed: Claimed, plan: str) -> str:
    ctx.db(lambda session: clips.to_heavy_lane(session, claimed.id, plan))
    return f"heavy:{plan}"


def _cut_moment(ctx: JobContext, clip_id: str, moment: tuple[str, int, int],
                scratch: Path) -> None:
    """A live moment's source: its stretch of the session's rendition, cut frame-exact."""
    session_id, start_ms, end_ms = moment
    recording = scratch / "recording.mp4"
    ctx.fetch(file(live_rendition(session_id), "web.mp4"), recording)
    out = scratch / "moment.mp4"
    cut(recording, out, start=start_ms / 1000, seconds=(end_ms - start_ms) / 1000,
        timeout=ctx.settings.media_timeout_seconds)
    recording.unlink()
    ctx.store.put_file(clip_source(clip_id), out, "video/mp4")
    out.unlink()


def _refuse(ctx: JobContext, claimed: Claimed, refusal: Refusal, info: MediaInfo | None,
            sha256: str) -> str:
    async def save(session: AsyncSession) -> None:
        clip = await session.get(Clip, claimed.id)
        if clip is None or clip.state != ClipState.processing:
            return
        await clips.refuse(session, clip, code=refusal.code, message=refusal.message,
                           hint=refusal.hint, args=refusal.args,
                           facts=info.to_dict() if info else None,
                           sha256=sha256)

    ctx.db(save)
    return "invalid"


def _progress(ctx: JobContext, claimed: Claimed) -> Callable[[float], None]:
    """Progress into job.meta and to the member's page."""
    channel = clip_channel(claimed.community_id, claimed.member_id)
    return reporter(lambda fraction: ctx.redis.publish(channel, encode(
        {"id": claimed.id, "state": "processing", "progress": fraction})))
