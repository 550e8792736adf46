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


def live_recording(session_id: str, name: str = "recording.mkv") -> str:
    return f"live/{session_id}/{name}"
