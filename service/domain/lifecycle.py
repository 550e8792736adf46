"""The member lifecycle in numbers, for owners: invites sent -> accepted -> first story ->
approved -> featured in a published reel, per prompt.

Invites belong to the community (an invite names no prompt), so the first two steps are the
community's; the later steps count people, each once per prompt (and once in the totals):
- first story: sent a story for the prompt (its upload finished; withdrawn ones count, they
  were sent);
- approved: has a story for the prompt that a moderator approved (and is still approved);
- featured: has a story for the prompt in a reel that is public now.
Live highlights (clips cut from a host's session) are not member stories and are left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip, Community, Invite, Prompt, Reel
from service.domain.clip_state import ClipState
from service.domain.composition import Manifest
from service.domain.roles import Role


@dataclass(frozen=True)
class Steps:
    first_story: int
    approved: int
    featured: int


@dataclass(frozen=True)
class PromptNumbers:
    prompt_id: int | None  # None: stories shared without a prompt
    question: str | None
    open: bool
    steps: Steps


@dataclass(frozen=True)
class Numbers:
    invites_sent: int
    accepted: int
    totals: Steps
    prompts: list[PromptNumbers]

    def to_json(self) -> dict[str, Any]:
        return {"invites_sent": self.invites_sent, "accepted": self.accepted,
                "totals": asdict(self.totals),
                "prompts": [{"prompt_id": p.prompt_id, "question": p.question, "open": p.open,
                             **asdict(p.steps)} for p in self.prompts]}


def _steps(stories: list[tuple[int | None, int, str, str]], featured_clips: set[str],
           prompt: int | None, every: bool = False) -> Steps:
    mine = [s for s in stories if every or s[0] == prompt]
    return Steps(first_story=len({s[1] for s in mine}),
                 approved=len({s[1] for s in mine if s[2] == ClipState.approved}),
                 featured=len({s[1] for s in mine if s[3] in featured_clips}))


async def numbers(session: AsyncSession, community: Community) -> Numbers:
    invites = (await session.execute(select(func.count(Invite.id), func.sum(Invite.uses)).where(
        Invite.community_id == community.id, Invite.role == Role.member))).one()
    stories = [(p, m, str(s), c) for p, m, s, c in await session.execute(
        select(Clip.prompt_id, Clip.member_id, Clip.state, Clip.id).where(
            Clip.community_id == community.id, Clip.source != "live",
            Clip.state != ClipState.uploading))]
    featured: set[str] = set()
    for manifest in await session.scalars(select(Reel.manifest).where(
            Reel.community_id == community.id, Reel.public_version.is_not(None))):
        if manifest:
            featured.update(c.clip_id for c in Manifest.from_json(manifest).clips)
    prompts = list(await session.scalars(select(Prompt).where(
        Prompt.community_id == community.id).order_by(Prompt.created_at.desc(), Prompt.id)))
    rows = [PromptNumbers(p.id, p.question, p.closed_at is None,
                          _steps(stories, featured, p.id)) for p in prompts]
    if any(s[0] is None for s in stories):
        rows.append(PromptNumbers(None, None, True, _steps(stories, featured, None)))
    return Numbers(invites_sent=int(invites[0] or 0), accepted=int(invites[1] or 0),
                   totals=_steps(stories, featured, None, every=True), prompts=rows)
