"""A member's own story as My stories shows it (page and API): its state, the reason apart
from the moderator's note, its poster and video for the member to watch, its length, the
public reels it is in, and whether it can still be withdrawn."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip
from service.domain import reels
from service.domain.clip_state import ClipState
from service.domain.communities import Access
from service.events import clip_event, told
from service.i18n import Speech
from service.routes.links import Links
from service.storage.keys import clip_version

# a story that is still on its way or in use can be withdrawn; one that can't be used
# (invalid) or is already withdrawn has nothing to take back
WITHDRAWABLE = frozenset({ClipState.uploaded, ClipState.processing, ClipState.failed,
                          ClipState.ready_for_review, ClipState.approved, ClipState.rejected})
WATCHABLE = frozenset({ClipState.ready_for_review, ClipState.approved, ClipState.rejected})


def my_story(clip: Clip, links: Links, in_reels: list[Any], speech: Speech | None = None
             ) -> dict[str, Any]:
    """The clip event plus what only its member's pages show."""
    view = told(clip_event(clip), speech)
    rejected = clip.state == ClipState.rejected
    watchable = clip.state in WATCHABLE and clip.version > 0
    view.update({
        "created_at": clip.created_at.isoformat(),
        # a rejection's hint is the moderator's own words: pages show them apart from the
        # reason (`hint` stays as it was, for API clients)
        "note": view["hint"] if rejected else None,
        "duration": clip.rendition.get("duration") if watchable else None,
        "media": links.rendition(clip_version(clip.id, clip.version)) if watchable else None,
        "reels": [{"title": r.public_title or r.title, "url": f"/r/{r.slug}"} for r in in_reels],
        "withdrawable": clip.state in WITHDRAWABLE,
    })
    return view


async def story_views(session: AsyncSession, access: Access, rows: list[Clip], links: Links,
                     speech: Speech | None = None) -> list[dict[str, Any]]:
    shown = await reels.showing(session, access.community.id, [c.id for c in rows])
    return [my_story(c, links, shown.get(c.id, []), speech) for c in rows]
