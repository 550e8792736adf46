"""A community's brand on its public reel pages: a colour and a logo. The logo is untrusted
media: sniffed, size-capped, re-encoded by ffmpeg (media/logo.py) to a bounded PNG, written
to a new versioned key and only then named by the community (write, then commit)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from media.logo import make_logo, picture_type
from media.run import MediaError
from service.domain import audit
from service.domain.communities import Access
from service.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType
from service.storage import ObjectStore
from service.storage.keys import community_logo

LOGO_MAX_BYTES = 1_000_000  # under the form body limit (KUMPUL_MAX_BODY_BYTES' default)
LOGO_SIDE = 512
_COLOUR = re.compile(r"#[0-9a-f]{6}")


def check_colour(raw: object) -> str | None:
    """"#rrggbb" (lower case), or None for Kumpul's own colours."""
    value = str(raw or "").strip().lower()
    if not value:
        return None
    if not _COLOUR.fullmatch(value):
        raise Unprocessable("The brand colour must look like #1a2b3c.", code="invalid_colour")
    return value


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def text_on(colour: str) -> str:
    """Black or white, whichever reads better on `colour` (WCAG contrast; at least 4.5:1
    either way for every colour but a few mid greys, where it is still the better one)."""
    light = _luminance(colour)
    return "#000000" if (light + 0.05) / 0.05 >= 1.05 / (light + 0.05) else "#ffffff"


async def set_colour(session: AsyncSession, access: Access, raw: object) -> None:
    colour = check_colour(raw)
    if colour == access.community.brand_colour:
        return
    access.community.brand_colour = colour
    audit.record(session, action="community.brand_colour", subject_type="community",
                 subject_id=access.community.id, actor_id=access.user.id,
                 community_id=access.community.id, data={"colour": colour})


def check_logo(head: bytes, size: int) -> None:
    if size <= 0:
        raise Unprocessable("The file is empty.", code="empty_file")
    if size > LOGO_MAX_BYTES:
        raise PayloadTooLarge("A logo can be at most %(max_bytes)s.", code="file_too_large",
                              max_bytes=LOGO_MAX_BYTES)
    if picture_type(head) is None:
        raise UnsupportedMediaType("This isn't a picture we take.", code="unsupported_type",
                                   hint="Send a PNG, JPEG or WebP picture.")


def _store_logo(store: ObjectStore, picture: bytes, scratch: Path, key: str,
                timeout: float) -> None:
    """Check, re-encode in a private folder, store at `key` (a thread's work)."""
    check_logo(picture[:12], len(picture))
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="logo-", dir=scratch) as folder:
        source, out = Path(folder) / "upload", Path(folder) / "logo.png"
        source.write_bytes(picture)
        try:
            make_logo(source, out, max_side=LOGO_SIDE, timeout=timeout)
        except MediaError:
            raise Unprocessable("We couldn't read this picture.", code="unreadable_picture",
                                hint="Send a PNG, JPEG or WebP picture.") from None
        store.put_file(key, out, "image/png")


async def set_logo(session: AsyncSession, access: Access, store: ObjectStore, picture: bytes,
                   *, scratch: Path, media_seconds: float) -> int:
    """Re-encode `picture` (the uploaded bytes) and make it the community's logo: written to
    a new versioned key first, then named by the community. Returns its version."""
    version = abs(access.community.logo_version) + 1
    key = community_logo(access.community.id, version)
    await anyio.to_thread.run_sync(_store_logo, store, picture, scratch, key, media_seconds)
    access.community.logo_version = version
    audit.record(session, action="community.logo", subject_type="community",
                 subject_id=access.community.id, actor_id=access.user.id,
                 community_id=access.community.id, data={"version": version})
    return version


async def drop_logo(session: AsyncSession, access: Access) -> None:
    if access.community.logo_version <= 0:
        return
    # the number stays counted (the next logo gets a fresh key): only the pointer goes
    access.community.logo_version = -access.community.logo_version
    audit.record(session, action="community.logo_removed", subject_type="community",
                 subject_id=access.community.id, actor_id=access.user.id,
                 community_id=access.community.id)
