"""The outbox: every mail Kumpul sends is recorded (the site admin's outbox page); once the
change that caused it has committed, a job (`workers.mail.send_mails`, a chunk of mails per
job) hands it to the transport, retrying with backoff. A mail still refused when the retries
are spent is marked failed, with why, on the outbox page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service import effects
from service.db.models import MailOutbox, utcnow
from service.domain.paging import Page
from service.mail import Mail, MailError, Transport


def values_of(mail: Mail, transport: str, *, kind: str | None = None,
              user_id: int | None = None) -> dict[str, Any]:
    """The outbox row of `mail`, as column values."""
    return {"recipient": mail.to, "subject": mail.subject[:200], "body": mail.text,
            "html": mail.html, "headers": dict(mail.headers) or None, "kind": kind,
            "user_id": user_id, "transport": transport, "attempts": 0,
            "created_at": utcnow()}


async def send(session: AsyncSession, transport: str, mail: Mail, *, kind: str | None = None,
               user_id: int | None = None) -> MailOutbox:
    """Record `mail`; it goes out after this transaction commits."""
    row = MailOutbox(**values_of(mail, transport, kind=kind, user_id=user_id))
    session.add(row)
    await session.flush()
    effects.mail(session, row.id)
    return row


async def send_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Record many mails (`values_of`) in one bulk insert; they go out, in chunks, after the
    commit. Their ids, in order."""
    if not rows:
        return []
    ids = list(await session.scalars(
        insert(MailOutbox).returning(MailOutbox.id, sort_by_parameter_order=True), rows))
    for mail_id in ids:
        effects.mail(session, mail_id)
    return ids


@dataclass(frozen=True)
class Pending:
    id: int
    mail: Mail


async def pending(session: AsyncSession, ids: Iterable[int]) -> list[Pending]:
    """The mails of `ids` still to send (not sent, not given up on)."""
    rows = await session.scalars(select(MailOutbox).where(
        MailOutbox.id.in_(list(ids)), MailOutbox.sent_at.is_(None),
        MailOutbox.failed_at.is_(None)).order_by(MailOutbox.id))
    return [Pending(row.id, Mail(row.recipient, row.subject, row.body, row.html,
                                 tuple((row.headers or {}).items()))) for row in rows]


async def hand_over(transport: Transport, mails: Sequence[Pending]) -> dict[int, str | None]:
    """Give each mail to the transport: None when it went, else why not."""
    results: dict[int, str | None] = {}
    for item in mails:
        try:
            await transport.send(item.mail)
            results[item.id] = None
        except MailError as exc:
            results[item.id] = str(exc)[:500]
    return results


async def record(session: AsyncSession, results: Mapping[int, str | None], *,
                 final: bool) -> None:
    """Write down what happened to each mail; on the last try, a refused mail has failed."""
    now = utcnow()
    sent = [mail_id for mail_id, error in results.items() if error is None]
    if sent:
        await session.execute(update(MailOutbox).where(MailOutbox.id.in_(sent)).values(
            sent_at=now, error=None, attempts=MailOutbox.attempts + 1))
    for mail_id, error in results.items():
        if error is not None:
            await session.execute(update(MailOutbox).where(MailOutbox.id == mail_id).values(
                error=error, attempts=MailOutbox.attempts + 1,
                failed_at=now if final else None))


async def recent(session: AsyncSession, page: Page) -> list[MailOutbox]:
    query = select(MailOutbox).order_by(MailOutbox.id.desc())
    return list(await session.scalars(page.window(query)))
