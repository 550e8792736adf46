"""Story prompts: the questions hosts and moderators ask their community."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Community, Prompt, utcnow
from service.domain import audit
from service.domain.communities import Access
from service.domain.text import one_line
from service.errors import NotFound, Unprocessable


async def create(session: AsyncSession, access: Access, *, question: object,
                 description: object = "", max_seconds: object = None) -> Prompt:
    text = one_line(question)
    if not 3 <= len(text) <= 200:
        raise Unprocessable("A prompt's question needs 3 to 200 characters.",
                            code="invalid_question")
    seconds: int | None = None
    if max_seconds not in (None, ""):
        try:
            seconds = int(str(max_seconds))
        except ValueError:
            seconds = -1
        if not 5 <= seconds <= 3600:
            raise Unprocessable("max_seconds must be between 5 and 3600.",
                                code="invalid_max_seconds")
    prompt = Prompt(community_id=access.community.id, question=text,
                    description=str(description or "").strip()[:2000], max_seconds=seconds,
                    created_by=access.user.id)
    session.add(prompt)
    await session.flush()
    audit.record(session, action="prompt.created", subject_type="prompt", subject_id=prompt.id,
                 actor_id=access.user.id, community_id=access.community.id)
    return prompt


async def open_prompts(session: AsyncSession, community: Community) -> list[Prompt]:
    rows = await session.scalars(select(Prompt).where(
        Prompt.community_id == community.id, Prompt.closed_at.is_(None))
        .order_by(Prompt.id.desc()))
    return list(rows)


async def close(session: AsyncSession, access: Access, prompt_id: int) -> None:
    result = await session.execute(update(Prompt).where(
        Prompt.id == prompt_id, Prompt.community_id == access.community.id,
        Prompt.closed_at.is_(None)).values(closed_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("No such open prompt.", code="prompt_not_found")
    audit.record(session, action="prompt.closed", subject_type="prompt", subject_id=prompt_id,
                 actor_id=access.user.id, community_id=access.community.id)
