"""Render a reel from its manifest: pieces from the cache (rendered once when missing), the
fast build, then store and commit. Thin: load -> media operations -> store -> advance state.

Outputs go to `reels/{id}/v{version}/` (reel.mp4, poster.jpg, manifest.json) before the
commit; a render that was superseded meanwhile deletes what it wrote.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from media import reel as media_reel
from media.canvas import FPS, MEZZANINE
from media.probe import probe
from media.run import tool_version
from service import jobs as service_jobs
from service.db.models import Clip, Reel
from service.domain import reels
from service.domain.clip_state import ClipState
from service.domain.composition import Manifest
from service.storage import ObjectStore
from service.storage.keys import (
    REEL_FILES,
    clip_pieces,
    reel_file,
    reel_folder,
    reel_version,
    reel_version_of,
)
from workers.context import JobContext, context
from workers.pieces import Pieces, RenderRefused
from workers.running import failing, reporter

CONTENT_TYPES = {"reel.mp4": "video/mp4", "poster.jpg": "image/jpeg",
                 "manifest.json": "application/json"}


def render_reel(reel_id: str, version: int) -> str:
    ctx = context()

    async def claim(session: AsyncSession) -> Manifest | None:
        reel = await reels.claim(session, reel_id, version, service_jobs.REEL_DEADLINE)
        return Manifest.from_json(reel.manifest) if reel else None

    manifest = ctx.db(claim)
    if manifest is None:
        return "skipped"
    scratch = ctx.scratch(f"reel-{reel_id}")
    try:
        with failing(lambda error: ctx.db(lambda session: reels.fail_render(
                session, reel_id, version, error)), final=(RenderRefused,)):
            return _render(ctx, manifest, scratch)
    except RenderRefused:
        return "failed"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _sweep_withdrawn(ctx, [clip.clip_id for clip in manifest.clips])


def _render(ctx: JobContext, manifest: Manifest, scratch: Path) -> str:
    reel_id, version = manifest.reel_id, manifest.version
    timeout = ctx.settings.media_timeout_seconds
    report = reporter()
    total = len(manifest.clips) + 2 + bool(manifest.title_card)
    pieces = Pieces(ctx, manifest, scratch)
    parts: list[media_reel.Part] = []

    def step(part: media_reel.Part) -> None:
        parts.append(part)
        report(0.8 * len(parts) / total)

    if manifest.title_card:
        step(pieces.card(reel_id, manifest.title_card))
    if manifest.intro:
        step(pieces.asset(manifest.intro))
    for clip in manifest.clips:
        step(pieces.clip(clip))
    if manifest.outro:
        step(pieces.asset(manifest.outro))
    music = pieces.music(manifest.music) if manifest.music else None
    out = scratch / "reel.mp4"
    frames = media_reel.build(parts, media_reel.AudioPlan(overlap=manifest.overlap, music=music),
                              out, scratch, timeout=timeout,
                              on_progress=lambda f: report(0.8 + 0.2 * f))
    lead = parts[0].frames if manifest.title_card and len(parts) > 1 else 0
    media_reel.poster(out, scratch / "poster.jpg", lead + FPS, timeout=timeout)
    made = probe(out, timeout=timeout)
    final = replace(manifest, rendered={"ffmpeg": tool_version(), "frames": frames,
                                        "parts": [part.frames for part in parts],
                                        "mezzanine": MEZZANINE.tag})
    (scratch / "manifest.json").write_text(json.dumps(final.to_json(), indent=2,
                                                      sort_keys=True))
    for name in REEL_FILES:
        ctx.store.put_file(reel_file(reel_id, version, name), scratch / name, CONTENT_TYPES[name])
    output = {"frames": frames, "duration": round(frames / FPS, 3), "size": made.size,
              "width": made.video.width if made.video else 0,
              "height": made.video.height if made.video else 0}
    done = ctx.db(lambda session: _finish(session, reel_id, version, output, final))
    if done is None:  # superseded while we worked: leave nothing behind
        ctx.store.delete_prefix(reel_version(reel_id, version))
        return "superseded"
    state, keep = done
    if keep:
        _drop_old_versions(ctx.store, reel_id, keep=keep)
    return state


async def _finish(session: AsyncSession, reel_id: str, version: int, output: dict[str, Any],
                  manifest: Manifest) -> tuple[str, set[int]] | None:
    current = await session.get(Reel, reel_id)
    if current is not None and current.rendered_version == version:
        return "duplicate", set()  # a twin run of this job finished first: keep its files
    reel = await reels.finish_render(session, reel_id, version, output)
    if reel is None:
        return None
    reel.manifest = manifest.to_json()
    return reel.state, {v for v in (reel.rendered_version, reel.public_version)
                        if v is not None}


def _drop_old_versions(store: ObjectStore, reel_id: str, keep: set[int]) -> None:
    """Older renders go once a newer one is current (they may show a withdrawn clip)."""
    for info in store.list(reel_folder(reel_id) + "/"):
        found = reel_version_of(info.key)
        if found is not None and found not in keep:
            store.delete(info.key)


def _sweep_withdrawn(ctx: JobContext, clip_ids: list[str]) -> None:
    """A clip withdrawn while we rendered: drop any piece of it we stored after its purge."""
    async def gone(session: AsyncSession) -> list[str]:
        found = []
        for clip_id in clip_ids:
            clip = await session.get(Clip, clip_id)
            if clip is None or clip.state == ClipState.withdrawn:
                found.append(clip_id)
        return found

    for clip_id in ctx.db(gone):
        ctx.store.delete_prefix(clip_pieces(clip_id))
