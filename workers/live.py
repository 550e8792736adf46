"""A live session's recording becomes a normal web rendition (with poster and filmstrip),
through the same step as member stories."""

from __future__ import annotations

import shutil

from rq import get_current_job
from sqlalchemy.ext.asyncio import AsyncSession

from media.normalise import RenditionSpec
from media.probe import probe
from service import jobs as service_jobs
from service.db.models import LiveSession
from service.domain import live
from service.queue import Queues
from service.storage.keys import live_rendition
from workers import rendition
from workers.context import JobContext


def render_recording(session_id: str) -> str:
    with JobContext() as ctx:
        async def claim(session: AsyncSession) -> str | None:
            row = await session.get(LiveSession, session_id)
            return row.recording_key if row and row.recording_state == "processing" else None

        key = ctx.db(claim)
        if key is None:
            return "skipped"
        scratch = ctx.scratch(f"recording-{session_id}")
        try:
            fetched = rendition.fetch(ctx.store, key, scratch)
            info = probe(fetched.path, timeout=ctx.settings.media_timeout_seconds)
            rendition.render(ctx.store, fetched.path, info,
                             spec=RenditionSpec(long_side=ctx.settings.rendition_long_side),
                             max_seconds=info.duration,
                             timeout=max(ctx.settings.media_timeout_seconds, info.duration * 2),
                             prefix=live_rendition(session_id))
        except Exception:
            job = get_current_job()
            if job is None or not job.retries_left:
                ctx.db(lambda session: live.recording_done(session, session_id, ok=False))
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        ctx.db(lambda session: live.recording_done(session, session_id, ok=True))
        service_jobs.find_moments(Queues(ctx.redis), session_id)
        return "ready"
