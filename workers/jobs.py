"""Jobs the app enqueues by dotted path ("workers.jobs.<name>"). Each is thin:
load -> media operation -> store -> advance state."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

from rq import get_current_job
from sqlalchemy.ext.asyncio import AsyncSession

from service import jobs as service_jobs
from service.db.models import Clip
from service.domain import admission, clips, deliveries, reels, uploads
from service.domain.admission import Admission
from service.domain.clip_state import ClipState
from service.storage.keys import clip_folder
from workers.context import context


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
    ctx = context()

    async def state(session: AsyncSession) -> str | None:
        clip = await session.get(Clip, clip_id)
        return clip.state if clip else None

    if ctx.db(state) not in (ClipState.withdrawn, None):
        return 0  # only withdrawn (or vanished) clips lose their media
    return ctx.store.delete_prefix(clip_folder(clip_id))


def expire_uploads() -> int:
    """Remove uploads abandoned past their expiry: their parts, spool files and rows."""
    ctx = context()
    sink = ctx.store.upload_sink(ctx.settings.spool_dir)

    async def sweep(session: AsyncSession) -> int:
        stale = await uploads.expired(session)
        for upload, clip in stale:
            await uploads.discard(session, sink, upload, clip, "upload.expired")
        return len(stale)

    return ctx.db(sweep)


def reconcile() -> int:
    """Re-queue clips and reels stuck in a working state past their deadline, and webhook
    attempts overdue (lost job, dead worker, Redis restarted without the queue): the
    database is the source of truth."""
    ctx = context()
    stuck = ctx.db(lambda session: clips.requeue_overdue(
        session, ctx.settings.ingest_deadline_seconds))
    rules = Admission.from_settings(ctx.settings)  # clips that wait for a turn nobody gave
    stuck += ctx.db(lambda session: admission.admit_waiting(session, rules))
    stuck += ctx.db(lambda session: deliveries.requeue_overdue(
        session, ctx.settings.webhook_timeout_seconds))
    return stuck + ctx.db(lambda session: reels.requeue_overdue(
        session, service_jobs.REEL_DEADLINE))
