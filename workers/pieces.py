"""A reel's pieces: each (clip version, canvas, trim, caption, template) rendered once into
the reel's mezzanine format and cached in storage; title cards and intros/outros likewise."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from media import reel as media_reel
from media.canvas import FPS, MEZZANINE, canvas
from media.piece import MIN_FRAMES, CardSpec, PieceSpec, render_card, render_piece
from media.probe import MediaInfo, probe
from media.run import FORMATS, MediaError
from media.text import Caption
from service.domain.composition import Manifest, ManifestClip
from service.storage.keys import asset_piece, asset_source, clip_piece, clip_rendition, reel_card
from workers.context import JobContext

MAX_ASSET_FRAMES = 10 * FPS  # intros and outros are cut to 10 s


class RenderRefused(Exception):
    """The manifest can't be rendered (an asset isn't usable media); not worth retrying."""


def digest(spec: dict[str, Any]) -> str:
    data = json.dumps({**spec, "mezzanine": MEZZANINE.tag}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def usable(path: Path, timeout: float, *, video: bool) -> MediaInfo:
    """A moderator's file, probed: an intro/outro with video, or music with audio."""
    try:
        info = probe(path, timeout=timeout,
                     formats=FORMATS if video else media_reel.MUSIC_FORMATS)
    except MediaError as exc:
        raise RenderRefused(f"a file of the reel isn't readable media: {exc}") from exc
    if (info.video is None) if video else (info.audio is None):
        raise RenderRefused("an intro or outro has no video" if video
                            else "the music file has no audio")
    return info


class Pieces:
    """Fetches cached pieces, rendering and storing the missing ones."""

    def __init__(self, ctx: JobContext, manifest: Manifest, scratch: Path) -> None:
        self.ctx, self.store, self.scratch = ctx, ctx.store, scratch
        self.canvas = canvas(manifest.canvas)
        self.template = manifest.template
        self.timeout = ctx.settings.media_timeout_seconds
        self.count = 0

    def _cached(self, key: str, make: Callable[[Path], None]) -> Path:
        self.count += 1
        path = self.scratch / f"piece-{self.count}.mov"
        if self.store.exists(key):
            self.ctx.fetch(key, path)
        else:
            make(path)
            self.store.put_file(key, path, "video/quicktime")
        return path

    def clip(self, item: ManifestClip) -> media_reel.Part:
        caption = Caption(**item.caption) if item.caption else None
        spec = PieceSpec(self.canvas, item.trim_in, item.frames, caption or None)
        key = clip_piece(item.clip_id, digest({
            "clip": item.clip_id, "version": item.clip_version,
            "canvas": self.canvas.name, "start": spec.start, "frames": item.frames,
            "caption": item.caption, "template": self.template}))

        def make(path: Path) -> None:
            source = self.scratch / f"source-{self.count}.mp4"
            self.ctx.fetch(clip_rendition(item.clip_id, item.clip_version, "web.mp4"), source)
            info = probe(source, timeout=self.timeout)
            assert info.video is not None
            render_piece(source, path, spec, info.video.display_size,
                         has_audio=info.audio is not None, timeout=self.timeout)
            source.unlink()

        return media_reel.Part(self._cached(key, make), item.frames)

    def card(self, reel_id: str, card: dict[str, str]) -> media_reel.Part:
        spec = CardSpec(self.canvas, card["text"], card["color"])
        key = reel_card(reel_id, digest({"card": card, "canvas": self.canvas.name,
                                         "frames": spec.frames, "template": self.template}))
        return media_reel.Part(self._cached(key, lambda path: render_card(
            path, spec, timeout=self.timeout)), spec.frames)

    def asset(self, asset_id: str) -> media_reel.Part:
        source = self.scratch / f"asset-{asset_id}"
        self.ctx.fetch(asset_source(asset_id), source)
        info = usable(source, self.timeout, video=True)
        assert info.video is not None
        frames = min(int(info.duration * FPS), MAX_ASSET_FRAMES)
        if frames < MIN_FRAMES:
            raise RenderRefused("an intro or outro must last at least 2 seconds")
        spec = PieceSpec(self.canvas, 0, frames, None)
        key = asset_piece(asset_id, digest({"asset": asset_id, "canvas": self.canvas.name,
                                            "frames": frames}))
        size = info.video.display_size
        return media_reel.Part(self._cached(key, lambda path: render_piece(
            source, path, spec, size, has_audio=info.audio is not None,
            timeout=self.timeout)), frames)

    def music(self, asset_id: str) -> media_reel.Music:
        path = self.scratch / "music"
        self.ctx.fetch(asset_source(asset_id), path)
        usable(path, self.timeout, video=False)
        return media_reel.Music(path)
