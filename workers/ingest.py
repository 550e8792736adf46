"""Ingest: every accepted source becomes one web rendition, a poster and a filmstrip.

Thin by design: load -> media operations -> store -> advance state. The version of the
outputs is fixed before any work (current + 1), so a rerun after a crash writes the same
keys again and the clip never points at two sets of outputs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from media.cut import cut
from media.normalise import RenditionSpec
from media.probe import MediaInfo
from service.db.models import Clip, Prompt
from service.domain import clips, moments
from service.domain.clip_state import ClipState
from service.domain.story_rules import Refusal, StoryLimits
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


def ingest_clip(clip_id: str) -> str:
    ctx = context()
    claimed = ctx.db(lambda session: _claim(session, clip_id,
                                            ctx.settings.ingest_deadline_seconds))
    if claimed is None:
        return "skipped"
    scratch = ctx.scratch(f"ingest-{clip_id}")
    try:
        with failing(lambda error: ctx.db(lambda session: clips.fail(session, clip_id, error))):
            return _ingest(ctx, claimed, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _claim(session: AsyncSession, clip_id: str, deadline_seconds: int) -> Claimed | None:
    """The member's page hears of `processing` from the first progress report, after commit."""
    clip = await clips.start_processing(session, clip_id, deadline_seconds)
    if clip is None:
        return None
    prompt = await session.get(Prompt, clip.prompt_id) if clip.prompt_id else None
    cut = await moments.cut_of(session, clip.id) if clip.source == "live" else None
    return Claimed(clip.id, clip.version + 1, prompt.max_seconds if prompt else None,
                   clip.community_id, clip.member_id, cut)


def _ingest(ctx: JobContext, claimed: Claimed, scratch: Path) -> str:
    settings = ctx.settings
    if claimed.cut is not None and not ctx.store.exists(clip_source(claimed.id)):
        _cut_moment(ctx, claimed.id, claimed.cut, scratch)
    source = scratch / "source"
    sha256 = ctx.fetch(clip_source(claimed.id), source)
    limits = StoryLimits.from_settings(settings, claimed.prompt_seconds)
    info, refusal = rendition.check(source, limits, settings.media_timeout_seconds)
    if refusal is not None or info is None:
        return _refuse(ctx, claimed, refusal or rendition.UNREADABLE, info, sha256)
    version = claimed.next_version
    made = rendition.render(  # write first ...
        ctx.store, source, info, spec=RenditionSpec(long_side=settings.rendition_long_side),
        max_seconds=limits.max_seconds, timeout=settings.media_timeout_seconds,
        folder=clip_version(claimed.id, version), on_progress=_progress(ctx, claimed))
    finished = ctx.db(lambda session: clips.finish_rendition(  # ... then commit
        session, claimed.id, version=version, sha256=sha256, facts=made.facts,
        rendition=made.rendition))
    if finished is None:  # withdrawn while we worked: leave nothing behind
        ctx.store.delete_prefix(clip_version(claimed.id, version))
        return "withdrawn"
    return str(finished.state)


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
