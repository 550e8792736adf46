"""Render a reel from its manifest: pieces from the cache (rendered once when missing), the
fast build, then store and commit. Thin: load -> media operations -> store -> advance state.

Outputs go to `reels/{id}/v{version}/` (reel.mp4, poster.jpg, manifest.json) before the
commit; a render that was superseded meanwhile deletes what it wrote.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rq import get_current_job
from sqlalchemy.ext.asyncio import AsyncSession

from media import reel as media_reel
from media.canvas import FPS, MEZZANINE, canvas
from media.piece import MIN_FRAMES, CardSpec, PieceSpec, render_card, render_piece
from media.probe import probe
from media.run import FORMATS, MediaError, tool_version
from media.text import Caption
from service import jobs as service_jobs
from service.db.models import Clip, Reel
from service.domain import reels
from service.domain.clip_state import ClipState
from service.storage import ObjectStore
from service.storage.keys import (
    asset_piece,
    asset_source,
    clip_piece,
    clip_rendition,
    reel_card,
    reel_version,
)
from workers.context import JobContext

MAX_ASSET_FRAMES = 10 * FPS  # intros and outros are cut to 10 s


class RenderRefused(Exception):
    """The manifest can't be rendered (an asset isn't usable media); not worth retrying."""


def render_reel(reel_id: str, version: int) -> str:
    with JobContext() as ctx:
        return _run(ctx, reel_id, version)


def _digest(spec: dict[str, Any]) -> str:
    data = json.dumps({**spec, "mezzanine": MEZZANINE.tag}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def _run(ctx: JobContext, reel_id: str, version: int) -> str:
    async def claim(session: AsyncSession) -> dict[str, Any] | None:
        reel = await reels.claim(session, reel_id, version, service_jobs.REEL_DEADLINE)
        return dict(reel.manifest) if reel else None

    manifest = ctx.db(claim)
    if manifest is None:
        return "skipped"
    scratch = ctx.scratch(f"reel-{reel_id}")
    try:
        return _render(ctx, manifest, scratch)
    except Exception as exc:
        job, error = get_current_job(), repr(exc)
        if isinstance(exc, RenderRefused) or job is None or not job.retries_left:
            ctx.db(lambda session: reels.fail_render(session, reel_id, version, error))
        if isinstance(exc, RenderRefused):
            return "failed"
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _sweep_withdrawn(ctx, [c["clip_id"] for c in manifest["clips"]])


class Pieces:
    """Fetches cached pieces, rendering and storing the missing ones."""

    def __init__(self, ctx: JobContext, manifest: dict[str, Any], scratch: Path) -> None:
        self.ctx, self.store, self.scratch = ctx, ctx.store, scratch
        self.canvas = canvas(manifest["canvas"])
        self.template = manifest["template"]
        self.count = 0

    def _cached(self, key: str, make: Callable[[Path], None]) -> Path:
        self.count += 1
        path = self.scratch / f"piece-{self.count}.mov"
        if self.store.exists(key):
            _download(self.store, key, path)
        else:
            make(path)
            self.store.put_file(key, path, "video/quicktime")
        return path

    def clip(self, item: dict[str, Any]) -> media_reel.Part:
        caption = Caption(**item["caption"]) if item["caption"] else None
        frames = item["trim_out"] - item["trim_in"]
        spec = PieceSpec(self.canvas, item["trim_in"], frames, caption or None)
        key = clip_piece(item["clip_id"], _digest({
            "clip": item["clip_id"], "version": item["clip_version"],
            "canvas": self.canvas.name, "start": spec.start, "frames": frames,
            "caption": item["caption"], "template": self.template}))

        def make(path: Path) -> None:
            source = self.scratch / f"source-{self.count}.mp4"
            _download(self.store, clip_rendition(item["clip_id"], item["clip_version"],
                                                 "web.mp4"), source)
            info = probe(source, timeout=self.ctx.settings.media_timeout_seconds)
            assert info.video is not None
            render_piece(source, path, spec, info.video.display_size,
                         has_audio=info.audio is not None,
                         timeout=self.ctx.settings.media_timeout_seconds)
            source.unlink()

        return media_reel.Part(self._cached(key, make), frames)

    def card(self, reel_id: str, card: dict[str, str]) -> media_reel.Part:
        spec = CardSpec(self.canvas, card["text"], card["color"])
        key = reel_card(reel_id, _digest({"card": card, "canvas": self.canvas.name,
                                          "frames": spec.frames, "template": self.template}))
        return media_reel.Part(self._cached(key, lambda path: render_card(
            path, spec, timeout=self.ctx.settings.media_timeout_seconds)), spec.frames)

    def asset(self, asset_id: str) -> media_reel.Part:
        source = self.scratch / f"asset-{asset_id}"
        _download(self.store, asset_source(asset_id), source)
        info = _usable(source, self.ctx.settings.media_timeout_seconds, video=True)
        assert info.video is not None
        frames = min(int(info.duration * FPS), MAX_ASSET_FRAMES)
        if frames < MIN_FRAMES:
            raise RenderRefused("an intro or outro must last at least 2 seconds")
        spec = PieceSpec(self.canvas, 0, frames, None)
        key = asset_piece(asset_id, _digest({"asset": asset_id, "canvas": self.canvas.name,
                                             "frames": frames}))
        return media_reel.Part(self._cached(key, lambda path: render_piece(
            source, path, spec, info.video.display_size if info.video else (0, 0),
            has_audio=info.audio is not None,
            timeout=self.ctx.settings.media_timeout_seconds)), frames)


def _usable(path: Path, timeout: float, *, video: bool) -> Any:
    try:
        info = probe(path, timeout=timeout,
                     formats=FORMATS if video else media_reel.MUSIC_FORMATS)
    except MediaError as exc:
        raise RenderRefused(f"a file of the reel isn't readable media: {exc}") from exc
    if (info.video is None) if video else (info.audio is None):
        raise RenderRefused("an intro or outro has no video" if video
                            else "the music file has no audio")
    return info


def _download(store: ObjectStore, key: str, path: Path) -> None:
    with path.open("wb") as fh:
        for chunk in store.get(key):
            fh.write(chunk)


def _render(ctx: JobContext, manifest: dict[str, Any], scratch: Path) -> str:
    reel_id, version = manifest["reel_id"], manifest["version"]
    report = _reporter()
    total = len(manifest["clips"]) + 2 + bool(manifest["title_card"])
    pieces = Pieces(ctx, manifest, scratch)
    parts: list[media_reel.Part] = []

    def step(part: media_reel.Part) -> None:
        parts.append(part)
        report(0.8 * len(parts) / total)

    if manifest["title_card"]:
        step(pieces.card(reel_id, manifest["title_card"]))
    if manifest["intro"]:
        step(pieces.asset(manifest["intro"]))
    for item in manifest["clips"]:
        step(pieces.clip(item))
    if manifest["outro"]:
        step(pieces.asset(manifest["outro"]))
    music = None
    if manifest["music"]:
        music_path = scratch / "music"
        _download(ctx.store, asset_source(manifest["music"]), music_path)
        _usable(music_path, ctx.settings.media_timeout_seconds, video=False)
        music = media_reel.Music(music_path)
    out = scratch / "reel.mp4"
    frames = media_reel.build(parts, media_reel.AudioPlan(overlap=manifest["overlap"],
                                                         music=music),
                              out, scratch, timeout=ctx.settings.media_timeout_seconds,
                              on_progress=lambda f: report(0.8 + 0.2 * f))
    lead = parts[0].frames if manifest["title_card"] and len(parts) > 1 else 0
    media_reel.poster(out, scratch / "poster.jpg", lead + FPS,
                      timeout=ctx.settings.media_timeout_seconds)
    made = probe(out, timeout=ctx.settings.media_timeout_seconds)
    final = {**manifest, "ffmpeg": tool_version(), "frames": frames,
             "mezzanine": MEZZANINE.tag}
    (scratch / "manifest.json").write_text(json.dumps(final, indent=2, sort_keys=True))
    prefix = reel_version(reel_id, version)
    for name, kind in (("reel.mp4", "video/mp4"), ("poster.jpg", "image/jpeg"),
                       ("manifest.json", "application/json")):
        ctx.store.put_file(f"{prefix}/{name}", scratch / name, kind)
    output = {"frames": frames, "duration": round(frames / FPS, 3), "size": made.size,
              "width": made.video.width if made.video else 0,
              "height": made.video.height if made.video else 0}
    done = ctx.db(lambda session: _finish(session, reel_id, version, output, final))
    if done is None:  # superseded while we worked: leave nothing behind
        ctx.store.delete_prefix(prefix + "/")
        return "superseded"
    state, keep = done
    if keep:
        _drop_old_versions(ctx.store, reel_id, keep=keep)
    return state


async def _finish(session: AsyncSession, reel_id: str, version: int, output: dict[str, Any],
                  manifest: dict[str, Any]) -> tuple[str, set[int]] | None:
    current = await session.get(Reel, reel_id)
    if current is not None and current.rendered_version == version:
        return "duplicate", set()  # a twin run of this job finished first: keep its files
    reel = await reels.finish_render(session, reel_id, version, output)
    if reel is None:
        return None
    reel.manifest = manifest
    return reel.state, {v for v in (reel.rendered_version, reel.public_version)
                        if v is not None}


def _drop_old_versions(store: ObjectStore, reel_id: str, keep: set[int]) -> None:
    """Older renders go once a newer one is current (they may show a withdrawn clip)."""
    for info in store.list(f"reels/{reel_id}/v"):
        folder = info.key.split("/")[2]
        if folder[1:].isdigit() and int(folder[1:]) not in keep:
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
        ctx.store.delete_prefix(f"clips/{clip_id}/pieces/")


def _reporter() -> Callable[[float], None]:
    job = get_current_job()
    last = 0.0

    def report(fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if job is None or (now - last < 0.5 and fraction < 1.0):
            return
        last = now
        job.meta["progress"] = round(min(fraction, 1.0), 3)
        job.save_meta()  # type: ignore[no-untyped-call]  # rq leaves it unannotated

    return report

