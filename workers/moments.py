"""The moment finder of an ended session: the recording's loudness and scene changes are
measured once (kept with the session), then scored with its reactions and chat."""

from __future__ import annotations

import shutil
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from media.probe import probe
from media.signals import momentary_loudness, scene_changes
from service.domain import moments
from service.storage.keys import file, live_rendition
from workers.context import JobContext, context
from workers.running import failing


def find_moments(session_id: str) -> str:
    ctx = context()

    async def claim(session: AsyncSession) -> tuple[bool, dict[str, Any] | None]:
        live = await moments.claim_finding(session, session_id)
        return live is not None, live.signals if live else None

    found, signals = ctx.db(claim)
    if not found:
        return "skipped"
    with failing(lambda _: ctx.db(lambda session: moments.finding_failed(session, session_id))):
        measured = signals or _measure(ctx, session_id)
    proposed = ctx.db(lambda session: moments.store_proposals(
        session, session_id, measured, moments.Limits.from_settings(ctx.settings)))
    return f"{len(proposed)} proposed"


def _measure(ctx: JobContext, session_id: str) -> dict[str, Any]:
    """Loudness (the loudest momentary value of each second) and scene changes."""
    scratch = ctx.scratch(f"moments-{session_id}")
    try:
        path = scratch / "recording.mp4"
        ctx.fetch(file(live_rendition(session_id), "web.mp4"), path)
        timeout = ctx.settings.media_timeout_seconds
        duration = probe(path, timeout=timeout).duration
        limit = max(timeout, duration)  # both read the whole recording once
        peaks: dict[int, float] = {}
        for t, lufs in momentary_loudness(path, timeout=limit):
            peaks[int(t)] = max(peaks.get(int(t), -70.0), lufs)
        return {"duration": round(duration, 3),
                "loudness": [[t, round(v, 1)] for t, v in sorted(peaks.items())],
                "scenes": scene_changes(path, timeout=limit)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
