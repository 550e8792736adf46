"""Jobs the app enqueues by dotted path ("workers.jobs.<name>"). Each is thin:
load -> media operation -> store -> advance state."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import socket
from typing import Any

from rq import get_current_job
from sqlalchemy.ext.asyncio import AsyncSession

from media.probe import probe
from media.run import MediaError, MediaTimeout
from service.db.models import Clip, Prompt
from service.domain import clips, uploads
from service.domain.clip_state import ClipState
from service.domain.story_rules import StoryLimits, refuse_media
from service.storage.keys import clip_source
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


def probe_clip(clip_id: str) -> str:
    """Check an uploaded source against the story rules and record its facts."""
    ctx = JobContext()

    async def load(session: AsyncSession) -> tuple[Clip, int | None] | None:
        clip = await session.get(Clip, clip_id)
        if clip is None or clip.state != ClipState.uploaded or clip.sha256:
            return None  # gone, withdrawn, or already probed: nothing to do
        prompt = await session.get(Prompt, clip.prompt_id) if clip.prompt_id else None
        return clip, prompt.max_seconds if prompt else None

    found = ctx.db(load)
    if found is None:
        return "skipped"
    limits = StoryLimits.from_settings(ctx.settings, found[1])
    scratch = ctx.scratch(f"probe-{clip_id}")
    try:
        source = scratch / "source"
        digest = hashlib.sha256()
        with source.open("wb") as fh:
            for chunk in ctx.store.get(clip_source(clip_id)):
                digest.update(chunk)
                fh.write(chunk)
        try:
            info = probe(source, timeout=ctx.settings.media_timeout_seconds)
            refusal = refuse_media(info, limits)
            facts: dict[str, Any] | None = info.to_dict()
        except MediaTimeout:
            refusal, facts = None, None
            code, message, hint = ("probe_timeout", "This file took too long to read.",
                                   "Export it again as an MP4 and try again.")
        except MediaError:
            refusal, facts = None, None
            code, message, hint = ("unreadable", "We couldn't read this file as a video.",
                                   "Send an MP4, MOV or WebM video.")
        else:
            if refusal is not None:
                code, message, hint = refusal.code, refusal.message, refusal.hint
        sha256 = digest.hexdigest()

        async def save(session: AsyncSession) -> Clip | None:
            clip = await session.get(Clip, clip_id)
            if clip is None or clip.state != ClipState.uploaded:
                return None
            if facts is not None and refusal is None:
                await clips.record_probe(session, clip, sha256=sha256, facts=facts)
            else:
                await clips.refuse(session, clip, code=code, message=message, hint=hint,
                                   facts=facts, sha256=sha256)
            return clip

        clip = ctx.db(save)
        if clip is not None:
            ctx.announce(clip)
        return clip.state if clip is not None else "skipped"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
