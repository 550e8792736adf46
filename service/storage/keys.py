"""Deterministic, versioned object keys. Writers upload to a new version, then commit the row."""

from __future__ import annotations


def clip_source(clip_id: str) -> str:
    return f"clips/{clip_id}/source"


def clip_version(clip_id: str, version: int) -> str:
    """The folder of one version of a clip's rendition."""
    return f"clips/{clip_id}/v{version}"


def clip_rendition(clip_id: str, version: int, name: str) -> str:
    return f"{clip_version(clip_id, version)}/{name}"


def reel_file(reel_id: str, version: int, name: str = "reel.mp4") -> str:
    return f"reels/{reel_id}/v{version}/{name}"


def live_recording(session_id: str, name: str = "recording.webm") -> str:
    return f"live/{session_id}/{name}"


def live_rendition(session_id: str) -> str:
    """The folder of the recording's web rendition (web.mp4, poster.jpg, filmstrip.jpg)."""
    return f"live/{session_id}/rendition"


def clip_piece(clip_id: str, digest: str) -> str:
    """A clip rendered into a reel's canvas: kept with the clip, so withdrawal purges it."""
    return f"clips/{clip_id}/pieces/{digest}.mov"


def reel_version(reel_id: str, version: int) -> str:
    return f"reels/{reel_id}/v{version}"


def reel_card(reel_id: str, digest: str) -> str:
    return f"reels/{reel_id}/cards/{digest}.mov"


def asset_source(asset_id: str) -> str:
    return f"assets/{asset_id}/source"


def asset_piece(asset_id: str, digest: str) -> str:
    return f"assets/{asset_id}/pieces/{digest}.mov"
