"""`workers.webhooks.deliver_webhook`: one attempt of a webhook delivery.

Claim the attempt (signed now), check the endpoint's address and send to the checked
address only (`service.outbound`), then record the answer; the domain schedules the next
retry or gives up. A refused address is a failed attempt like any other, with its reason.
"""

from __future__ import annotations

from service import outbound
from service.domain import deliveries
from service.domain.deliveries import Outcome
from workers.context import context


def deliver_webhook(delivery_id: int, round_: int, attempt: int) -> str:
    ctx = context()
    settings = ctx.settings
    prepared = ctx.db(lambda session: deliveries.attempt(session, delivery_id, round_, attempt))
    if prepared is None:
        return "skipped"
    try:
        dest = outbound.destination(prepared.url, settings.webhook_allow_hosts)
        answer = outbound.post(dest, prepared.body, prepared.headers,
                               timeout=settings.webhook_timeout_seconds)
        outcome = Outcome(answer.status, answer.latency_ms, answer.excerpt)
    except outbound.Refused as exc:
        outcome = Outcome(None, None, error=f"refused: {exc}")
    except outbound.Failed as exc:
        outcome = Outcome(None, None, error=str(exc))
    return ctx.db(lambda session: deliveries.record(
        session, delivery_id, round_, attempt, outcome,
        schedule=settings.webhook_retry_schedule, mail_transport=settings.mail_transport))
