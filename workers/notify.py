"""Fan-out of announcements (`service/domain/notifications.py`): one job per announcement,
one per chunk of its audience."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from service import effects
from service import jobs as service_jobs
from service.db.models import Announcement
from service.domain import notifications
from workers.context import context


def announce(key: str) -> int:
    """Tell a small audience at once; queue a large one in chunks. Returns how many people
    were told here (0 when chunks were queued)."""
    ctx = context()

    async def work(session: AsyncSession) -> int:
        found = await session.get(Announcement, key)
        if found is None:
            return 0
        people = await notifications.audience(session, found)
        size = service_jobs.NOTIFY_CHUNK
        if len(people) <= size:
            return await notifications.tell(session, found, people, ctx.settings)
        for start in range(0, len(people), size):
            effects.queue(session, "notify_chunk", key,
                          ",".join(map(str, people[start:start + size])))
        return 0

    return ctx.db(work)


def notify_chunk(key: str, user_ids: str) -> int:
    """Tell one chunk of an announcement's audience (bulk inserts; their mails are queued
    in chunks after the commit)."""
    ctx = context()
    ids = [int(part) for part in user_ids.split(",") if part.strip().isdigit()]

    async def work(session: AsyncSession) -> int:
        found = await session.get(Announcement, key)
        if found is None:
            return 0
        return await notifications.tell(session, found, ids, ctx.settings)

    return ctx.db(work)


def remind_soon() -> int:
    """Every minute (`kumpul scheduler`): "starts in an hour" for sessions due."""
    ctx = context()
    return ctx.db(notifications.remind_soon)
