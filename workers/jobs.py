"""Jobs the app enqueues by dotted path ("workers.jobs.<name>"). Each is thin:
load -> media operation -> store -> advance state."""

from __future__ import annotations

import os
import platform
import socket
from datetime import timedelta
from typing import Any

from rq import get_current_job
from sqlalchemy.ext.asyncio import AsyncSession

from service import jobs as service_jobs
from service.db.models import Clip, utcnow
from service.domain import clips, uploads
from service.domain.clip_state import ClipState
from service.queue import Queues
from service.uploads.sink import open_sink
from workers.context import JobContext


def ping(note: str) -> dict[str, Any]:
    """Proof of life: runs in a worker process and reports which one."""
    job = get_current_job()
    if job is not None:
        job.meta["progress"] = 1.0
        job.save_meta()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
    return {"note": note, "pid": os.getpid(), "host": socket.gethostname(),
            "python": platform.python_version()}


def purge_clip_media(clip_id: str) -> int:
    """Delete every object of a withdrawn clip."""
    ctx = JobContext()

    async def state(session: AsyncSession) -> str | None:
        clip = await session.get(Clip, clip_id)
        return clip.state if clip else None

    if ctx.db(state) not in (ClipState.withdrawn, None):
        return 0  # only withdrawn (or vanished) clips lose their media
    return ctx.store.delete_prefix(f"clips/{clip_id}")


def expire_uploads() -> int:
    """Remove uploads abandoned past their expiry: their parts, spool files and rows."""
    ctx = JobContext()
    sink = open_sink(ctx.store, ctx.settings.spool_dir)

    async def sweep(session: AsyncSession) -> int:
        stale = await uploads.expired(session)
        for upload, clip in stale:
            await uploads.discard(session, sink, upload, clip, "upload.expired")
        return len(stale)

    return ctx.db(sweep)


def reconcile() -> int:
    """Re-queue clips stuck in a working state past their deadline (lost job, dead worker)."""
    ctx = JobContext()
    queues = Queues(ctx.redis)

    async def sweep(session: AsyncSession) -> list[str]:
        stuck = await clips.overdue(session)
        for clip in stuck:  # a fresh deadline, so one sweep re-queues a clip once
            clip.deadline_at = utcnow() + timedelta(seconds=ctx.settings.ingest_deadline_seconds)
        return [clip.id for clip in stuck]

    stuck = ctx.db(sweep)
    for clip_id in stuck:
        service_jobs.ingest_clip(queues, clip_id)
    return len(stuck)
