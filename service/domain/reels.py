"""Highlight reels: composed from approved clips, rendered by a job, published at a slug.

Consent follows the clip: when a clip is withdrawn (or rejected after approval) every reel
that used it loses public access at once, goes `stale`, and is rendered again without the
clip (and published again if it was public), or unpublished when no clip remains.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from media.canvas import CANVASES
from service import __version__
from service.db.models import Asset, Clip, Reel, User, utcnow
from service.domain import audit
from service.domain.clip_state import ClipState
from service.domain.communities import Access
from service.domain.reel_state import EDITABLE, WORKING, ReelState, transition
from service.domain.trims import check_trim, trim_of
from service.errors import Conflict, NotFound, Unprocessable

TEMPLATE_VERSION = 1  # the look of captions and title cards; part of every piece's cache key
MAX_ITEMS = 30
CROSSFADE_FRAMES = (8, 15, 30)  # 0.27 s, 0.5 s, 1 s
ASSET_KINDS = {"music_asset": "music", "intro_asset": "intro", "outro_asset": "outro"}
Job = tuple[str, int]  # (reel id, version) of a render to queue after commit


def empty_composition() -> dict[str, Any]:
    return {"items": [], "transition": "cut", "crossfade_frames": 15, "title_card": None,
            "captions": True, "music_asset": None, "intro_asset": None, "outro_asset": None}


async def create(session: AsyncSession, access: Access, *, title: object,
                 canvas: object = "9:16") -> Reel:
    name = " ".join(str(title or "").split())[:120]
    if not name:
        raise Unprocessable("Give the reel a title.", code="title_required")
    if str(canvas) not in CANVASES:
        raise Unprocessable(f"canvas must be one of {', '.join(CANVASES)}.",
                            code="invalid_canvas")
    reel = Reel(id=uuid.uuid4().hex, community_id=access.community.id,
                slug=secrets.token_urlsafe(6), title=name, state=ReelState.draft,
                canvas=str(canvas), composition=empty_composition(), version=0,
                republish=False, manifest={}, output={}, created_by=access.user.id)
    session.add(reel)
    audit.record(session, action="reel.created", subject_type="reel", subject_id=reel.id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"title": name, "canvas": reel.canvas})
    return reel


async def of_community(session: AsyncSession, access: Access) -> list[Reel]:
    rows = await session.scalars(select(Reel).where(Reel.community_id == access.community.id)
                                 .order_by(Reel.created_at.desc()))
    return list(rows)


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


async def _approved(session: AsyncSession, access: Access, clip_id: object) -> Clip:
    clip = await session.get(Clip, str(clip_id))
    if clip is None or clip.community_id != access.community.id:
        raise NotFound(f"No clip {clip_id!r} here.", code="clip_not_found")
    if clip.state != ClipState.approved:
        raise Conflict(f"Clip {clip.id} is {clip.state}; only approved clips go into reels.",
                       code="clip_not_approved")
    return clip


async def _items(session: AsyncSession, access: Access, raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        raise Unprocessable(f"items is a list of at most {MAX_ITEMS} clips.",
                            code="invalid_items")
    items, seen = [], set()
    for entry in raw:
        if not isinstance(entry, dict) or "clip_id" not in entry:
            raise Unprocessable("Each item names a clip_id.", code="invalid_items")
        clip = await _approved(session, access, entry["clip_id"])
        if clip.id in seen:
            raise Unprocessable("A clip can be in a reel once.", code="duplicate_clip")
        seen.add(clip.id)
        start, end = trim_of(clip)
        start, end = check_trim(clip, entry.get("trim_in", start), entry.get("trim_out", end))
        items.append({"clip_id": clip.id, "trim_in": start, "trim_out": end})
    return items


def _title_card(raw: object) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise Unprocessable("title_card is {text, color} or null.", code="invalid_title_card")
    text = " ".join(str(raw.get("text") or "").split())
    color = str(raw.get("color") or "#1d3557")
    if not text or len(text) > 80:
        raise Unprocessable("A title card has 1 to 80 characters of text.",
                            code="invalid_title_card")
    if not (len(color) == 7 and color[0] == "#"
            and all(c in "0123456789abcdefABCDEF" for c in color[1:])):
        raise Unprocessable("The brand colour is #rrggbb.", code="invalid_color")
    return {"text": text, "color": color.lower()}


async def _asset(session: AsyncSession, access: Access, field: str, raw: object) -> str | None:
    if raw in (None, ""):
        return None
    asset = await session.get(Asset, str(raw))
    if asset is None or asset.community_id != access.community.id \
            or asset.kind != ASSET_KINDS[field]:
        raise NotFound(f"No {ASSET_KINDS[field]} file {raw!r} here.", code="asset_not_found")
    return asset.id


async def update(session: AsyncSession, access: Access, reel: Reel,
                 body: dict[str, Any]) -> None:
    """Change the title, canvas or composition. Not while a render runs."""
    known = {"title", "canvas", "items", "transition", "crossfade_frames", "title_card",
             "captions", *ASSET_KINDS}
    unknown = set(body) - known
    if unknown:
        raise Unprocessable(f"Unknown fields: {', '.join(sorted(unknown))}.",
                            code="unknown_fields")
    if reel.state not in EDITABLE:
        raise Conflict("The reel is rendering; edit it when the render ends.",
                       code="reel_busy")
    comp = dict(reel.composition)
    if "title" in body:
        title = " ".join(str(body["title"] or "").split())[:120]
        if not title:
            raise Unprocessable("Give the reel a title.", code="title_required")
        reel.title = title
    if "canvas" in body:
        if str(body["canvas"]) not in CANVASES:
            raise Unprocessable(f"canvas must be one of {', '.join(CANVASES)}.",
                                code="invalid_canvas")
        reel.canvas = str(body["canvas"])
    if "items" in body:
        comp["items"] = await _items(session, access, body["items"])
    if "transition" in body:
        if body["transition"] not in ("cut", "crossfade"):
            raise Unprocessable("transition is cut or crossfade.", code="invalid_transition")
        comp["transition"] = body["transition"]
    if "crossfade_frames" in body:
        if body["crossfade_frames"] not in CROSSFADE_FRAMES:
            raise Unprocessable(f"crossfade_frames is one of {CROSSFADE_FRAMES}.",
                                code="invalid_transition")
        comp["crossfade_frames"] = body["crossfade_frames"]
    if "title_card" in body:
        comp["title_card"] = _title_card(body["title_card"])
    if "captions" in body:
        comp["captions"] = bool(body["captions"])
    for field in ASSET_KINDS:
        if field in body:
            comp[field] = await _asset(session, access, field, body[field])
    reel.composition = comp
    reel.updated_at = utcnow()
    audit.record(session, action="reel.edited", subject_type="reel", subject_id=reel.id,
                 actor_id=access.user.id, community_id=reel.community_id,
                 data={"fields": sorted(body)})


async def _manifest(session: AsyncSession, reel: Reel, version: int) -> dict[str, Any]:
    """Everything a render depends on, so that rendering it again gives the same frames."""
    comp = reel.composition
    clips = []
    for item in comp["items"]:
        clip = await session.get(Clip, item["clip_id"])
        if clip is None or clip.state != ClipState.approved:
            raise Conflict(f"Clip {item['clip_id']} is no longer approved; take it out of "
                           "the reel.", code="clip_not_approved")
        member = await session.get(User, clip.member_id)
        name = clip.caption_name if clip.caption_name is not None else (
            member.display_name if member else "")
        clips.append({"clip_id": clip.id, "clip_version": clip.version,
                      "consent_basis": clip.consent_basis,
                      "release_version": clip.release_version,
                      "release_sha256": clip.release_sha256,
                      "consented_at": clip.consented_at.isoformat(),
                      "trim_in": item["trim_in"], "trim_out": item["trim_out"],
                      "caption": {"name": name, "quote": clip.caption_quote}
                      if comp.get("captions", True) else None})
    overlap = comp["crossfade_frames"] if comp["transition"] == "crossfade" else 0
    return {"reel_id": reel.id, "version": version, "canvas": reel.canvas,
            "template": TEMPLATE_VERSION, "overlap": overlap, "title_card": comp["title_card"],
            "clips": clips, "music": comp.get("music_asset"), "intro": comp.get("intro_asset"),
            "outro": comp.get("outro_asset"), "kumpul": __version__}


async def request_render(session: AsyncSession, reel: Reel, *, actor_id: int | None,
                         deadline_seconds: int) -> Job:
    """Freeze the composition into a manifest and move to `rendering`. The caller queues
    the returned job after commit."""
    if not reel.composition["items"]:
        raise Conflict("Add at least one approved clip before rendering.", code="reel_empty")
    version = reel.version + 1
    manifest = await _manifest(session, reel, version)
    if reel.state == ReelState.published:
        reel.republish = True  # the public keeps the old render until the new one is done
    transition(reel, ReelState.rendering)
    reel.version, reel.manifest = version, manifest
    reel.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
    audit.record(session, action="reel.render_requested", subject_type="reel",
                 subject_id=reel.id, actor_id=actor_id, community_id=reel.community_id,
                 data={"version": version, "clips": [c["clip_id"] for c in manifest["clips"]]})
    return reel.id, version


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
        _go_public(session, reel, actor_id=None)
    else:
        transition(reel, ReelState.rendered)
    return reel


async def fail_render(session: AsyncSession, reel_id: str, version: int,
                      error: str) -> Reel | None:
    reel = await session.get(Reel, reel_id)
    if reel is None or reel.state != ReelState.rendering or reel.version != version:
        return None
    transition(reel, ReelState.failed, reason="The render failed; try again.")
    reel.deadline_at = None
    audit.record(session, action="reel.failed", subject_type="reel", subject_id=reel.id,
                 actor_id=None, community_id=reel.community_id,
                 data={"version": version, "error": error[:500]})
    return reel


def _go_public(session: AsyncSession, reel: Reel, *, actor_id: int | None) -> None:
    transition(reel, ReelState.published)
    reel.public_version, reel.republish, reel.published_at = (reel.rendered_version, False,
                                                              utcnow())
    audit.record(session, action="reel.published", subject_type="reel", subject_id=reel.id,
                 actor_id=actor_id, community_id=reel.community_id,
                 data={"version": reel.public_version, "slug": reel.slug,
                       "automatic": actor_id is None})


async def publish(session: AsyncSession, access: Access, reel: Reel) -> None:
    if reel.rendered_version is None:
        raise Conflict("Render the reel before publishing it.", code="reel_not_rendered")
    _go_public(session, reel, actor_id=access.user.id)


async def unpublish(session: AsyncSession, access: Access, reel: Reel) -> None:
    """Public access ends at once (the public routes read `public_version`)."""
    transition(reel, ReelState.unpublished)
    reel.public_version, reel.republish = None, False
    audit.record(session, action="reel.unpublished", subject_type="reel", subject_id=reel.id,
                 actor_id=access.user.id, community_id=reel.community_id)


async def drop_clip(session: AsyncSession, clip: Clip, *, why: str,
                    deadline_seconds: int = 1800) -> list[Job]:
    """A clip may no longer be shown: take it out of every reel of its community. Rendered
    reels lose public access now and become stale; then each is rendered again without it
    (published again when it was public), or unpublished when no clip remains."""
    rows = await session.scalars(select(Reel).where(Reel.community_id == clip.community_id))
    jobs: list[Job] = []
    for reel in rows:
        items = reel.composition.get("items", [])
        if not any(i["clip_id"] == clip.id for i in items):
            continue
        reel.composition = {**reel.composition,
                            "items": [i for i in items if i["clip_id"] != clip.id]}
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
        if reel.composition["items"]:
            reel.republish = was_public
            jobs.append(await request_render(session, reel, actor_id=None,
                                             deadline_seconds=deadline_seconds))
        else:
            transition(reel, ReelState.unpublished, reason="No clips remain in this reel.")
            reel.deadline_at = None
            audit.record(session, action="reel.unpublished", subject_type="reel",
                         subject_id=reel.id, actor_id=None, community_id=reel.community_id,
                         data={"because": "no clips remain"})
    return jobs


async def claim_overdue(session: AsyncSession, deadline_seconds: int,
                        limit: int = 50) -> list[Job]:
    """Renders whose job was lost or whose worker died, each given a fresh deadline."""
    rows = await session.scalars(select(Reel).where(
        Reel.state.in_([str(s) for s in WORKING]), Reel.deadline_at.is_not(None),
        Reel.deadline_at < utcnow()).order_by(Reel.deadline_at).limit(limit))
    stuck = list(rows)
    for reel in stuck:
        reel.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
    return [(reel.id, reel.version) for reel in stuck]
