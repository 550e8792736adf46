"""The outbox: every mail Kumpul sends is recorded (the site admin's outbox page), and
handed to the transport once the change that caused it has committed (`effects.mail`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import effects
from service.db.models import MailOutbox, utcnow
from service.domain.paging import Page
from service.mail import Mail, MailError, Transport


async def send(session: AsyncSession, transport: str, mail: Mail) -> MailOutbox:
    """Record `mail`; it goes out after this transaction commits."""
    row = MailOutbox(recipient=mail.to, subject=mail.subject, body=mail.text,
                     transport=transport, created_at=utcnow())
    session.add(row)
    await session.flush()
    effects.mail(session, row.id)
    return row


async def deliver(sessions: async_sessionmaker[AsyncSession], transport: Transport,
                  ids: Sequence[int]) -> None:
    """Hand recorded mails to the transport; each row says when it went, or why not."""
    for mail_id in ids:
        async with sessions.begin() as session:
            row = await session.get(MailOutbox, mail_id)
            if row is None or row.sent_at is not None:
                continue
            try:
                await transport.send(Mail(row.recipient, row.subject, row.body))
                row.sent_at, row.error = utcnow(), None
            except MailError as exc:
                row.error = str(exc)[:500]


async def recent(session: AsyncSession, page: Page) -> list[MailOutbox]:
    query = select(MailOutbox).order_by(MailOutbox.id.desc())
    return list(await session.scalars(page.window(query)))
