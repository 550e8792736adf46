"""Ingest: every accepted source becomes one web rendition, a poster and a filmstrip.

Thin by design: load -> media operations -> store -> advance state. The version of the
outputs is fixed before any work (current + 1), so a rerun after a crash writes the same
keys again and the clip never points at two sets of outputs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from rq import get_current_job
from sqlalchemy.ext.asyncio import AsyncSession

from media.cut import cut
from media.normalise import RenditionSpec
from media.probe import MediaInfo
from service.db.models import Clip, Prompt
from service.domain import clips, moments
from service.domain.story_rules import Refusal, StoryLimits
from service.events import clip_channel, encode
from service.storage.keys import clip_source, clip_version, live_rendition
from workers import rendition
from workers.context import JobContext


class Claimed:
    def __init__(self, clip: Clip, prompt_seconds: int | None,
                 cut: tuple[str, int, int] | None) -> None:
        self.id = clip.id
        self.next_version = clip.version + 1
        self.prompt_seconds = prompt_seconds
        self.community_id = clip.community_id
        self.member_id = clip.member_id
        self.cut = cut  # a live moment: (session, start ms, end ms) of its recording


def ingest_clip(clip_id: str) -> str:
    with JobContext() as ctx:
        return _run(ctx, clip_id)


def _run(ctx: JobContext, clip_id: str) -> str:
    claimed = ctx.db(lambda session: _claim(session, clip_id,
                                            ctx.settings.ingest_deadline_seconds))
    if claimed is None:
        return "skipped"
    scratch = ctx.scratch(f"ingest-{clip_id}")
    try:
        return _ingest(ctx, claimed, scratch)
    except Exception as exc:
        error = repr(exc)
        job = get_current_job()
        if job is None or not job.retries_left:  # out of retries: tell the member
            failed = ctx.db(lambda session: clips.fail(session, clip_id, error))
            if failed is not None:
                ctx.announce(failed)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _claim(session: AsyncSession, clip_id: str, deadline_seconds: int) -> Claimed | None:
    """The member's page hears of `processing` from the first progress report, after commit."""
    clip = await clips.start_processing(session, clip_id, deadline_seconds)
    if clip is None:
        return None
    prompt = await session.get(Prompt, clip.prompt_id) if clip.prompt_id else None
    cut = await moments.cut_of(session, clip.id) if clip.source == "live" else None
    return Claimed(clip, prompt.max_seconds if prompt else None, cut)


def _ingest(ctx: JobContext, claimed: Claimed, scratch: Path) -> str:
    settings = ctx.settings
    if claimed.cut is not None and not ctx.store.exists(clip_source(claimed.id)):
        _cut_moment(ctx, claimed.id, claimed.cut, scratch)
    fetched = rendition.fetch(ctx.store, clip_source(claimed.id), scratch)
    limits = StoryLimits.from_settings(settings, claimed.prompt_seconds)
    info, refusal = rendition.check(fetched.path, limits, settings.media_timeout_seconds)
    if refusal is not None or info is None:
        return _refuse(ctx, claimed, refusal or rendition.UNREADABLE, info, fetched.sha256)
    version = claimed.next_version
    made = rendition.render(  # write first ...
        ctx.store, fetched.path, info, spec=RenditionSpec(long_side=settings.rendition_long_side),
        max_seconds=limits.max_seconds, timeout=settings.media_timeout_seconds,
        prefix=clip_version(claimed.id, version),
        on_progress=_reporter(ctx, claimed))
    finished = ctx.db(lambda session: clips.finish_rendition(  # ... then commit
        session, claimed.id, version=version, sha256=fetched.sha256, facts=made.facts,
        rendition=made.rendition))
    if finished is None:  # withdrawn while we worked: leave nothing behind
        ctx.store.delete_prefix(clip_version(claimed.id, version))
        return "withdrawn"
    ctx.announce(finished)
    return str(finished.state)


def _cut_moment(ctx: JobContext, clip_id: str, moment: tuple[str, int, int],
                scratch: Path) -> None:
    """A live moment's source: its stretch of the session's rendition, cut frame-exact."""
    session_id, start_ms, end_ms = moment
    recording = rendition.fetch(ctx.store, f"{live_rendition(session_id)}/web.mp4",
                                scratch).path
    out = scratch / "moment.mp4"
    cut(recording, out, start=start_ms / 1000, seconds=(end_ms - start_ms) / 1000,
        timeout=ctx.settings.media_timeout_seconds)
    recording.unlink()
    ctx.store.put_file(clip_source(clip_id), out, "video/mp4")
    out.unlink()


def _refuse(ctx: JobContext, claimed: Claimed, refusal: Refusal, info: MediaInfo | None,
            sha256: str) -> str:
    async def save(session: AsyncSession) -> Clip | None:
        clip = await session.get(Clip, claimed.id)
        if clip is None or clip.state != "processing":
            return None
        await clips.refuse(session, clip, code=refusal.code, message=refusal.message,
                           hint=refusal.hint, facts=info.to_dict() if info else None,
                           sha256=sha256)
        return clip

    clip = ctx.db(save)
    if clip is not None:
        ctx.announce(clip)
    return "invalid"


def _reporter(ctx: JobContext, claimed: Claimed) -> Callable[[float], None]:
    """Progress into job.meta and to the member's page, at most a few times a second."""
    job = get_current_job()
    last = 0.0

    def report(fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 0.5 and fraction < 1.0:
            return
        last = now
        if job is not None:
            job.meta["progress"] = round(fraction, 3)
            job.save_meta()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        ctx.redis.publish(clip_channel(claimed.community_id, claimed.member_id), encode(
            {"id": claimed.id, "state": "processing", "progress": round(fraction, 3)}))

    return report
