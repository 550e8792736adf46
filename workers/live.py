"""A live session's recording becomes a normal web rendition (with poster and filmstrip),
through the same step as member stories; then its moments are found."""

from __future__ import annotations

import shutil

from media.normalise import RenditionSpec
from media.probe import probe
from service.domain import live
from service.storage.keys import live_rendition
from workers import rendition
from workers.context import context
from workers.running import failing


def render_recording(session_id: str) -> str:
    ctx = context()
    key = ctx.db(lambda session: live.claim_recording(session, session_id))
    if key is None:
        return "skipped"
    scratch = ctx.scratch(f"recording-{session_id}")
    try:
        with failing(lambda _: ctx.db(lambda session: live.recording_done(
                session, session_id, ok=False))):
            source = scratch / "source"
            ctx.fetch(key, source)
            info = probe(source, timeout=ctx.settings.media_timeout_seconds)
            rendition.render(ctx.store, source, info,
                             spec=RenditionSpec(long_side=ctx.settings.rendition_long_side),
                             max_seconds=info.duration,
                             timeout=max(ctx.settings.media_timeout_seconds, info.duration * 2),
                             folder=live_rendition(session_id))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ctx.db(lambda session: live.recording_done(session, session_id, ok=True))  # finds moments
    return "ready"
