"""Mail delivery: a chunk of the outbox's mails per job, handed to the transport."""

from __future__ import annotations

from rq import get_current_job

from service.domain import outbox
from service.mail import MailError
from workers.context import context


def send_mails(ids: str) -> int:
    """Send the chunk's mails still waiting. Each row records its try; when some were refused
    the job fails and RQ tries again after its backoff (only those are sent again); on the
    last try they are marked failed, which the site admin's outbox page shows."""
    ctx = context()
    wanted = [int(part) for part in ids.split(",") if part.strip().isdigit()]
    waiting = ctx.db(lambda session: outbox.pending(session, wanted))
    if not waiting:
        return 0
    results = ctx.mail(lambda transport: outbox.hand_over(transport, waiting))
    job = get_current_job()
    final = job is None or not job.retries_left
    ctx.db(lambda session: outbox.record(session, results, final=final))
    refused = [error for error in results.values() if error is not None]
    if refused:
        raise MailError(f"{len(refused)} of {len(results)} mails were not sent: {refused[0]}")
    return len(results)
