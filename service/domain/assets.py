"""Moderators' files for reels: background music, intro and outro clips."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Asset
from service.domain import audit
from service.domain.communities import Access
from service.domain.story_rules import clean_filename
from service.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType
from service.i18n import N_

KINDS = ("music", "intro", "outro")
HEAD_BYTES = 64  # enough to tell the types apart
MAX_BYTES = {"music": 30 * 1024 * 1024, "intro": 100 * 1024 * 1024,
             "outro": 100 * 1024 * 1024}
_AUDIO_HINT = N_("Send an MP3, M4A, WAV, OGG or FLAC file.")
_VIDEO_HINT = N_("Send an MP4, MOV or WebM video.")


def check_kind(kind: object) -> str:
    if kind not in KINDS:
        raise Unprocessable("kind must be one of %(choices)s.", code="invalid_kind",
                            choices=", ".join(KINDS))
    return str(kind)


def check_size(kind: str, size: int) -> None:
    if size <= 0:
        raise Unprocessable("The file is empty.", code="empty_file")
    if size > MAX_BYTES[kind]:
        raise PayloadTooLarge("A %(kind)s file can be at most %(max_bytes)s.", kind=kind,
                              max_bytes=MAX_BYTES[kind],
                              code="file_too_large")


def sniff(kind: str, head: bytes) -> str:
    """The content type from the first bytes, or a clear refusal."""
    if kind == "music":
        if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
            return "audio/mpeg"
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return "audio/wav"
        if head[:4] == b"OggS":
            return "audio/ogg"
        if head[:4] == b"fLaC":
            return "audio/flac"
        if head[4:8] == b"ftyp":
            return "audio/mp4"
        raise UnsupportedMediaType("This isn't an audio file we take.", code="unsupported_type",
                                   hint=_AUDIO_HINT)
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    raise UnsupportedMediaType("This isn't a video file we take.", code="unsupported_type",
                               hint=_VIDEO_HINT)


def new_id() -> str:
    return uuid.uuid4().hex


def new(session: AsyncSession, access: Access, *, asset_id: str, kind: str, name: object,
        size: int, content_type: str) -> Asset:
    """The row of an asset whose file is already stored under `asset_source(asset_id)`."""
    asset = Asset(id=asset_id, community_id=access.community.id, kind=kind,
                  name=clean_filename(str(name or kind)), size=size, content_type=content_type,
                  created_by=access.user.id)
    session.add(asset)
    audit.record(session, action="asset.added", subject_type="asset", subject_id=asset.id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"kind": kind, "name": asset.name, "size": size})
    return asset


async def of_community(session: AsyncSession, access: Access) -> list[Asset]:
    rows = await session.scalars(select(Asset).where(Asset.community_id == access.community.id)
                                 .order_by(Asset.created_at.desc()))
    return list(rows)
