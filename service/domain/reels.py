"""Highlight reels: composed from approved clips, rendered by a job, published at a slug.

Consent follows the clip: when a clip is withdrawn (or rejected after approval) every reel
that used it loses public access at once, goes `stale`, and is rendered again without the
clip (and published again if it was public), or unpublished when no clip remains.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service import __version__, effects
from service.db.models import Asset, Clip, Reel, User, utcnow
from service.domain import audit, deliveries, notifications
from service.domain.clip_state import ClipState
from service.domain.communities import Access
from service.domain.composition import (
    ASSET_KINDS,
    MAX_ITEMS,
    Composition,
    Item,
    Manifest,
    ManifestClip,
    TitleCard,
    reel_canvas,
    reel_title,
)
from service.domain.paging import Page
from service.domain.reel_state import EDITABLE, WORKING, ReelState, transition
from service.domain.trims import check_trim, trim_of
from service.errors import Conflict, NotFound, Unprocessable
from service.i18n import N_

TEMPLATE_VERSION = 2  # the look of captions and title cards; part of every piece's cache key
FIELDS = frozenset({"title", "canvas", "items", "transition", "crossfade_frames", "title_card",
                    "captions", *ASSET_KINDS})


async def create(session: AsyncSession, access: Access, *, title: object,
                 canvas: object = "9:16") -> Reel:
    name, shape = reel_title(title), reel_canvas(canvas)
    reel = Reel(id=uuid.uuid4().hex, community_id=access.community.id,
                slug=secrets.token_urlsafe(6), title=name, state=ReelState.draft,
                canvas=shape, composition=Composition().to_json(), version=0,
                republish=False, manifest={}, output={}, created_by=access.user.id)
    session.add(reel)
    audit.record(session, action="reel.created", subject_type="reel", subject_id=reel.id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"title": name, "canvas": reel.canvas})
    return reel


async def of_community(session: AsyncSession, access: Access,
                       page: Page | None = None) -> list[Reel]:
    query = (select(Reel).where(Reel.community_id == access.community.id)
             .order_by(Reel.created_at.desc(), Reel.id))
    return list(await session.scalars(page.window(query) if page else query))


async def get(session: AsyncSession, access: Access, reel_id: str) -> Reel:
    reel = await session.get(Reel, reel_id)
    if reel is None or reel.community_id != access.community.id:
        raise NotFound("No such reel.", code="reel_not_found")
    return reel


async def public(session: AsyncSession, slug: str) -> Reel:
    reel = await session.scalar(select(Reel).where(Reel.slug == slug))
    if reel is None or reel.public_version is None:
        raise NotFound("This reel isn't published.", code="reel_not_found")
    return reel


async def published(session: AsyncSession, community_id: int, *, limit: int = 24,
                    excluding: str | None = None) -> list[Reel]:
    """The community's public reels, newest publication first."""
    query = select(Reel).where(Reel.community_id == community_id,
                               Reel.public_version.is_not(None))
    if excluding is not None:
        query = query.where(Reel.id != excluding)
    return list(await session.scalars(
        query.order_by(Reel.published_at.desc(), Reel.id).limit(limit)))


def public_clips(reel: Reel) -> set[str]:
    """The clips the public render of a reel shows: its manifest's, while no newer render
    is on the way, else only those the newer composition keeps too."""
    shown = {c["clip_id"] for c in reel.manifest.get("clips", [])}
    if reel.manifest.get("version") != reel.public_version:
        shown &= {item.clip_id for item in Composition.from_json(reel.composition).items}
    return shown


async def showing(session: AsyncSession, community_id: int,
                  clip_ids: list[str]) -> dict[str, list[Reel]]:
    """For each of these clips, the public reels it is in ("Your story is in ...")."""
    found: dict[str, list[Reel]] = {}
    wanted = set(clip_ids)
    for reel in await published(session, community_id, limit=200):
        for clip_id in public_clips(reel) & wanted:
            found.setdefault(clip_id, []).append(reel)
    return found


async def _approved(session: AsyncSession, access: Access, clip_id: object) -> Clip:
    clip = await session.get(Clip, str(clip_id))
    if clip is None or clip.community_id != access.community.id:
        raise NotFound("No clip '%(clip)s' here.", code="clip_not_found", clip=clip_id)
    if clip.state != ClipState.approved:
        raise Conflict("Clip %(clip)s is %(state)s; only approved clips go into reels.",
                       clip=clip.id, state=clip.state,
                       code="clip_not_approved")
    return clip


async def _items(session: AsyncSession, access: Access, raw: object) -> tuple[Item, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:  # before any lookup
        raise Unprocessable("items is a list of at most %(limit)s clips.", limit=MAX_ITEMS,
                            code="invalid_items")
    items = []
    for entry in raw:
        if not isinstance(entry, dict) or "clip_id" not in entry:
            raise Unprocessable("Each item names a clip_id.", code="invalid_items")
        clip = await _approved(session, access, entry["clip_id"])
        start, end = trim_of(clip)
        start, end = check_trim(clip, entry.get("trim_in", start), entry.get("trim_out", end))
        items.append(Item(clip.id, start, end))
    return tuple(items)


async def _asset(session: AsyncSession, access: Access, field: str, raw: object) -> str | None:
    if raw in (None, ""):
        return None
    asset = await session.get(Asset, str(raw))
    if asset is None or asset.community_id != access.community.id \
            or asset.kind != ASSET_KINDS[field]:
        raise NotFound("No %(kind)s file '%(asset)s' here.", code="asset_not_found",
                       kind=ASSET_KINDS[field], asset=str(raw))
    return asset.id


async def update(session: AsyncSession, access: Access, reel: Reel,
                 body: dict[str, Any]) -> None:
    """Change the title, canvas or composition. Not while a render runs."""
    unknown = set(body) - FIELDS
    if unknown:
        raise Unprocessable("Unknown fields: %(fields)s.", fields=", ".join(sorted(unknown)),
                            code="unknown_fields")
    if reel.state not in EDITABLE:
        raise Conflict("The reel is rendering; edit it when the render ends.",
                       code="reel_busy")
    title = reel_title(body["title"]) if "title" in body else reel.title
    shape = reel_canvas(body["canvas"]) if "canvas" in body else reel.canvas
    changes: dict[str, Any] = {k: body[k] for k in ("transition", "crossfade_frames")
                               if k in body}
    if "captions" in body:
        changes["captions"] = bool(body["captions"])
    if "title_card" in body:
        changes["title_card"] = TitleCard.parse(body["title_card"])
    if "items" in body:
        changes["items"] = await _items(session, access, body["items"])
    for field in ASSET_KINDS:
        if field in body:
            changes[field] = await _asset(session, access, field, body[field])
    composition = replace(Composition.from_json(reel.composition), **changes)
    reel.title, reel.canvas, reel.composition = title, shape, composition.to_json()
    reel.updated_at = utcnow()
    audit.record(session, action="reel.edited", subject_type="reel", subject_id=reel.id,
                 actor_id=access.user.id, community_id=reel.community_id,
                 data={"fields": sorted(body)})


async def _manifest(session: AsyncSession, reel: Reel, version: int) -> Manifest:
    """Everything a render depends on, so that rendering it again gives the same frames."""
    composition = Composition.from_json(reel.composition)
    clips = []
    for item in composition.items:
        clip = await session.get(Clip, item.clip_id)
        if clip is None or clip.state != ClipState.approved:
            raise Conflict("Clip %(clip)s is no longer approved; take it out of the reel.",
                           code="clip_not_approved", clip=item.clip_id)
        member = await session.get(User, clip.member_id)
        name = clip.caption_name if clip.caption_name is not None else (
            member.display_name if member else "")
        clips.append(ManifestClip(
            clip_id=clip.id, clip_version=clip.version, consent_basis=clip.consent_basis,
            release_version=clip.release_version, release_sha256=clip.release_sha256,
            consented_at=clip.consented_at.isoformat(), trim_in=item.trim_in,
            trim_out=item.trim_out,
            caption={"name": name, "quote": clip.caption_quote} if composition.captions
            else None))
    card = composition.title_card
    return Manifest(reel_id=reel.id, version=version, canvas=reel.canvas,
                    template=TEMPLATE_VERSION, overlap=composition.overlap,
                    title_card={"text": card.text, "color": card.color} if card else None,
                    clips=tuple(clips), music=composition.music_asset,
                    intro=composition.intro_asset, outro=composition.outro_asset,
                    kumpul=__version__)


async def request_render(session: AsyncSession, reel: Reel, *, actor_id: int | None,
                         deadline_seconds: int) -> int:
    """Freeze the composition into a manifest, move to `rendering` and queue the render.
    Returns the version being rendered."""
    if not Composition.from_json(reel.composition).items:
        raise Conflict("Add at least one approved clip before rendering.", code="reel_empty")
    version = reel.version + 1
    manifest = await _manifest(session, reel, version)
    if reel.state == ReelState.published:
        reel.republish = True  # the public keeps the old render until the new one is done
    transition(reel, ReelState.rendering)
    reel.version, reel.manifest = version, manifest.to_json()
    reel.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
    audit.record(session, action="reel.render_requested", subject_type="reel",
                 subject_id=reel.id, actor_id=actor_id, community_id=reel.community_id,
                 data={"version": version, "clips": [c.clip_id for c in manifest.clips]})
    effects.queue(session, "render_reel", reel.id, version)
    return version


async def claim(session: AsyncSession, reel_id: str, version: int,
                deadline_seconds: int) -> Reel | None:
    """The render job's start: the reel, if this version is still the one wanted."""
    reel = await session.get(Reel, reel_id)
    if reel is None or reel.state != ReelState.rendering or reel.version != version:
        return None
    reel.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
    return reel


async def finish_render(session: AsyncSession, reel_id: str, version: int,
                        output: dict[str, Any]) -> Reel | None:
    """The files of `version` are stored: make it current (and public again if the reel was).
    None if the reel moved on meanwhile (a newer render, a withdrawal)."""
    reel = await session.get(Reel, reel_id)
    if reel is None or reel.state != ReelState.rendering or reel.version != version:
        return None
    reel.rendered_version, reel.output, reel.deadline_at = version, output, None
    audit.record(session, action="reel.rendered", subject_type="reel", subject_id=reel.id,
                 actor_id=None, community_id=reel.community_id,
                 data={"version": version, "frames": output.get("frames")})
    if reel.republish:
        await _go_public(session, reel, actor_id=None)
    else:
        transition(reel, ReelState.rendered)
    return reel


async def fail_render(session: AsyncSession, reel_id: str, version: int,
                      error: str) -> Reel | None:
    reel = await session.get(Reel, reel_id)
    if reel is None or reel.state != ReelState.rendering or reel.version != version:
        return None
    transition(reel, ReelState.failed, reason=N_("The render failed; try again."))
    reel.deadline_at = None
    audit.record(session, action="reel.failed", subject_type="reel", subject_id=reel.id,
                 actor_id=None, community_id=reel.community_id,
                 data={"version": version, "error": error[:500]})
    return reel


async def _go_public(session: AsyncSession, reel: Reel, *, actor_id: int | None) -> None:
    transition(reel, ReelState.published)
    reel.public_version, reel.republish, reel.published_at = (reel.rendered_version, False,
                                                              utcnow())
    reel.public_title = reel.title  # the public page's title changes only with a publish
    audit.record(session, action="reel.published", subject_type="reel", subject_id=reel.id,
                 actor_id=actor_id, community_id=reel.community_id,
                 data={"version": reel.public_version, "slug": reel.slug,
                       "automatic": actor_id is None})
    await deliveries.emit(session, reel.community_id, "reel.published",
                          deliveries.reel_data(reel))


async def publish(session: AsyncSession, access: Access, reel: Reel) -> None:
    if reel.rendered_version is None:
        raise Conflict("Render the reel before publishing it.", code="reel_not_rendered")
    await _go_public(session, reel, actor_id=access.user.id)
    await notifications.reel_published(session, reel)


async def unpublish(session: AsyncSession, access: Access, reel: Reel) -> None:
    """Public access ends at once (the public routes read `public_version`)."""
    transition(reel, ReelState.unpublished)
    reel.public_version, reel.republish = None, False
    audit.record(session, action="reel.unpublished", subject_type="reel", subject_id=reel.id,
                 actor_id=access.user.id, community_id=reel.community_id)
    await deliveries.emit(session, reel.community_id, "reel.unpublished",
                          deliveries.reel_data(reel))


async def drop_clip(session: AsyncSession, clip: Clip, *, why: str,
                    deadline_seconds: int = 1800) -> None:
    """A clip may no longer be shown: take it out of every reel of its community. Rendered
    reels lose public access now and become stale; then each is rendered again without it
    (published again when it was public), or unpublished when no clip remains."""
    rows = await session.scalars(select(Reel).where(Reel.community_id == clip.community_id))
    for reel in rows:
        composition = Composition.from_json(reel.composition)
        if not any(item.clip_id == clip.id for item in composition.items):
            continue
        composition = replace(composition, items=tuple(
            item for item in composition.items if item.clip_id != clip.id))
        reel.composition = composition.to_json()
        if reel.state == ReelState.draft:
            audit.record(session, action="reel.edited", subject_type="reel",
                         subject_id=reel.id, actor_id=None, community_id=reel.community_id,
                         data={"removed_clip": clip.id, "because": why})
            continue
        was_public = reel.public_version is not None or reel.republish
        if reel.state != ReelState.stale:
            transition(reel, ReelState.stale)
        reel.public_version, reel.rendered_version, reel.republish = None, None, False
        audit.record(session, action="reel.stale", subject_type="reel", subject_id=reel.id,
                     actor_id=None, community_id=reel.community_id,
                     data={"clip_id": clip.id, "because": why, "was_public": was_public})
        if composition.items:
            reel.republish = was_public
            await request_render(session, reel, actor_id=None, deadline_seconds=deadline_seconds)
        else:
            transition(reel, ReelState.unpublished,
                       reason=N_("No clips remain in this reel."))
            reel.deadline_at = None
            audit.record(session, action="reel.unpublished", subject_type="reel",
                         subject_id=reel.id, actor_id=None, community_id=reel.community_id,
                         data={"because": "no clips remain"})
            await deliveries.emit(session, reel.community_id, "reel.unpublished",
                                  deliveries.reel_data(reel))


async def requeue_overdue(session: AsyncSession, deadline_seconds: int,
                          limit: int = 50) -> int:
    """Renders whose job was lost or whose worker died are queued again, each with a fresh
    deadline."""
    rows = await session.scalars(select(Reel).where(
        Reel.state.in_([str(s) for s in WORKING]), Reel.deadline_at.is_not(None),
        Reel.deadline_at < utcnow()).order_by(Reel.deadline_at).limit(limit))
    stuck = list(rows)
    for reel in stuck:
        reel.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
        effects.queue(session, "render_reel", reel.id, reel.version)
    return len(stuck)
