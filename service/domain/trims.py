"""Trims: spans of a clip's rendition in frames (30 fps, constant, as ingest makes it)."""

from __future__ import annotations

from service.db.models import Clip
from service.errors import Unprocessable

FPS = 30
MIN_FRAMES = 2 * FPS  # the shortest span a reel takes


def clip_frames(clip: Clip) -> int:
    """Whole frames of the rendition (30 fps, constant; its audio may run a little longer)."""
    return int(float(clip.rendition.get("duration") or 0.0) * FPS + 1e-6)


def trim_of(clip: Clip) -> tuple[int, int]:
    frames = clip_frames(clip)
    end = frames if clip.trim_out is None else min(clip.trim_out, frames)
    return min(clip.trim_in, end), end


def _frames(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unprocessable("%(name)s must be a whole number of frames.", code="invalid_trim",
                            name=name)
    return value


def check_trim(clip: Clip, start: object, end: object) -> tuple[int, int]:
    frames = clip_frames(clip)
    first, last = _frames(start, "trim_in"), _frames(end, "trim_out")
    if not 0 <= first < last <= frames:
        raise Unprocessable("The trim must lie within the clip's %(frames)s frames, in before out.",
                            frames=frames,
                            code="invalid_trim")
    if last - first < MIN_FRAMES:
        raise Unprocessable("Keep at least 2 seconds of the clip.", code="trim_too_short")
    return first, last
