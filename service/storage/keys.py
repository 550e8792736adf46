"""Deterministic, versioned object keys: every key Kumpul stores is built here. Writers upload
to a new version, then commit the row."""

from __future__ import annotations

RENDITION_FILES = ("web.mp4", "poster.jpg", "filmstrip.jpg")  # a rendition folder's files
REEL_FILES = ("reel.mp4", "poster.jpg", "manifest.json")  # a reel version's files


def file(folder: str, name: str) -> str:
    """One file of a folder (a rendition's or a reel version's)."""
    return f"{folder}/{name}"


def clip_folder(clip_id: str) -> str:
    """Everything of a clip: its source, renditions and pieces (withdrawal deletes it all)."""
    return f"clips/{clip_id}"


def clip_source(clip_id: str) -> str:
    return f"{clip_folder(clip_id)}/source"


def clip_version(clip_id: str, version: int) -> str:
    """The folder of one version of a clip's rendition."""
    return f"{clip_folder(clip_id)}/v{version}"


def clip_upload(clip_id: str) -> str:
    """The folder of an unfinished upload's temporary objects (its stored tail)."""
    return f"{clip_folder(clip_id)}/upload"


def clip_upload_tail(clip_id: str, parts: int) -> str:
    """An unfinished upload's bytes past its last full part, when `parts` parts are in."""
    return f"{clip_upload(clip_id)}/tail-{parts}.part"


def clip_rendition(clip_id: str, version: int, name: str) -> str:
    return file(clip_version(clip_id, version), name)


def clip_pieces(clip_id: str) -> str:
    """The folder of a clip's pieces: kept with the clip, so withdrawal purges them."""
    return f"{clip_folder(clip_id)}/pieces"


def clip_piece(clip_id: str, digest: str) -> str:
    """A clip rendered into a reel's canvas."""
    return f"{clip_pieces(clip_id)}/{digest}.mov"


def reel_folder(reel_id: str) -> str:
    return f"reels/{reel_id}"


def reel_version(reel_id: str, version: int) -> str:
    return f"{reel_folder(reel_id)}/v{version}"


def reel_file(reel_id: str, version: int, name: str = "reel.mp4") -> str:
    return file(reel_version(reel_id, version), name)


def reel_version_of(key: str) -> int | None:
    """The render version a key of a reel's folder belongs to (None for cards and the like)."""
    parts = key.split("/")
    folder = parts[2] if len(parts) > 3 and parts[0] == "reels" else ""
    number = folder[1:] if folder[:1] == "v" else ""
    return int(number) if number.isascii() and number.isdigit() else None


def reel_card(reel_id: str, digest: str) -> str:
    return f"{reel_folder(reel_id)}/cards/{digest}.mov"


def live_recording(session_id: str, name: str = "recording.webm") -> str:
    return f"live/{session_id}/{name}"


def live_rendition(session_id: str) -> str:
    """The folder of the recording's web rendition (web.mp4, poster.jpg, filmstrip.jpg)."""
    return f"live/{session_id}/rendition"


def asset_source(asset_id: str) -> str:
    return f"assets/{asset_id}/source"


def asset_piece(asset_id: str, digest: str) -> str:
    return f"assets/{asset_id}/pieces/{digest}.mov"


def community_logo(community_id: int, version: int) -> str:
    """A community's logo as Kumpul re-encoded it (PNG); a new version for each upload."""
    return f"communities/{community_id}/logo-v{version}.png"
