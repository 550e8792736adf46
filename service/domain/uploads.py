"""Resumable uploads of stories: create with consent, receive bytes, complete, end, expire."""

from __future__ import annotations

import secrets
from datetime import timedelta

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip, Upload, utcnow
from service.domain import admission, audit, clips
from service.domain.admission import Admission
from service.domain.clip_state import ClipState, transition
from service.domain.communities import Access
from service.domain.story_rules import (
    Refusal,
    StoryLimits,
    clean_filename,
    read_keep,
    refuse_size,
)
from service.domain.text import one_line
from service.errors import (
    ApiError,
    Gone,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from service.events import clip_changed
from service.settings import Settings
from service.storage.uploads import Sink

REFUSAL_STATUS = {"file_too_large": PayloadTooLarge, "unsupported_type": UnsupportedMediaType,
                  "invalid_trim": Unprocessable}


def refusal_error(refusal: Refusal) -> ApiError:
    cls = REFUSAL_STATUS.get(refusal.code, ApiError)
    return cls(refusal.message, code=refusal.code, hint=refusal.hint, **refusal.args)


async def create(session: AsyncSession, access: Access, sink: Sink, settings: Settings, *,
                 length: int, meta: dict[str, str]) -> Upload:
    """A clip in `uploading` with consent recorded, and the upload that will fill it."""
    prompt = await clips.open_prompt(session, access, meta.get("prompt"))
    limits = StoryLimits.from_settings(settings, prompt.max_seconds if prompt else None)
    refusal = refuse_size(length, limits)
    if refusal:
        raise refusal_error(refusal)
    keep = read_keep(meta.get("keep_from"), meta.get("keep_to"), limits)
    if isinstance(keep, Refusal):
        raise refusal_error(keep)
    filename = clean_filename(meta.get("filename") or meta.get("name") or "video")
    title = one_line(meta.get("title"), 120)
    clip = await clips.start_clip(session, access, release_version=meta.get("release"),
                                  release_language=meta.get("release_language"),
                                  title=title, filename=filename, prompt=prompt,
                                  source="recording" if meta.get("source") == "recording"
                                  else "upload")
    if keep is not None:
        clip.keep_from_ms, clip.keep_to_ms = round(keep.start * 1000), round(keep.end * 1000)
    upload = Upload(id=secrets.token_urlsafe(24), clip_id=clip.id, user_id=access.user.id,
                    length=length, offset=0, parts={},
                    expires_at=utcnow() + timedelta(hours=settings.upload_expiry_hours))
    await anyio.to_thread.run_sync(sink.open, upload)
    session.add(upload)
    return upload


async def find(session: AsyncSession, user_id: int, upload_id: str) -> tuple[Upload, Clip]:
    """The caller's own upload; anyone else's is as good as missing."""
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.user_id != user_id:
        raise NotFound("No such upload.", code="upload_not_found",
                       headers={"Tus-Resumable": "1.0.0"})
    clip = await session.get(Clip, upload.clip_id)
    assert clip is not None
    if clip.state == ClipState.withdrawn or (upload.completed_at is None
                                             and upload.expires_at <= utcnow()):
        raise Gone("This upload has expired or was withdrawn.", code="upload_gone",
                   hint="Start the upload again.", headers={"Tus-Resumable": "1.0.0"})
    return upload, clip


async def received(session: AsyncSession, sink: Sink, upload: Upload, clip: Clip,
                   settings: Settings, offset: int) -> bool:
    """Bytes up to `offset` are stored: keep the upload alive, and at the last byte complete
    it. The member's page hears of the progress. True when the upload is complete."""
    upload.offset = offset
    upload.expires_at = utcnow() + timedelta(hours=settings.upload_expiry_hours)
    finished = offset == upload.length and upload.completed_at is None
    if finished:
        await _complete(session, sink, upload, clip, Admission.from_settings(settings))
    clip_changed(session, clip, offset=offset, length=upload.length)
    return finished


async def _complete(session: AsyncSession, sink: Sink, upload: Upload, clip: Clip,
                    rules: Admission) -> None:
    """All bytes are in: the source object appears whole, the clip becomes `uploaded` and
    goes to ingest, or waits its turn (`admission`)."""
    info = await anyio.to_thread.run_sync(sink.finish, upload)
    upload.completed_at = utcnow()
    transition(clip, ClipState.uploaded)
    clip.size = info.size
    audit.record(session, action="clip.uploaded", subject_type="clip", subject_id=clip.id,
                 actor_id=upload.user_id, community_id=clip.community_id,
                 data={"size": info.size})
    await admission.admit(session, clip, rules)


async def discard(session: AsyncSession, sink: Sink, upload: Upload, clip: Clip,
                  action: str) -> None:
    """Remove an unfinished upload and its clip: no bytes, no rows left behind."""
    await anyio.to_thread.run_sync(sink.abort, upload)
    audit.record(session, action=action, subject_type="clip", subject_id=clip.id,
                 actor_id=upload.user_id, community_id=clip.community_id,
                 data={"offset": upload.offset, "length": upload.length})
    await session.delete(upload)
    await session.flush()  # the upload row first: it points at the clip
    await session.delete(clip)


async def unfinished(session: AsyncSession, clip_id: str) -> Upload | None:
    return await session.scalar(select(Upload).where(Upload.clip_id == clip_id,
                                                     Upload.completed_at.is_(None)))


async def drop_unfinished(session: AsyncSession, sink: Sink, clip_id: str) -> None:
    """Stop an unfinished upload of a clip that is being withdrawn: its bytes go too."""
    upload = await unfinished(session, clip_id)
    if upload is not None:
        await anyio.to_thread.run_sync(sink.abort, upload)
        await session.delete(upload)


async def expired(session: AsyncSession, limit: int = 100) -> list[tuple[Upload, Clip]]:
    rows = await session.execute(
        select(Upload, Clip).join(Clip, Clip.id == Upload.clip_id)
        .where(Upload.completed_at.is_(None), Upload.expires_at <= utcnow()).limit(limit))
    return [(u, c) for u, c in rows.all()]
