"""A webhook delivery's life: pending (an attempt is due, the first or a retry) ->
delivered (a 2xx answer) or failed (out of retries, or its endpoint was disabled); "send
again" brings a delivered or failed one back to pending."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import WebhookDelivery, utcnow
from service.domain.states import Machine


class DeliveryState(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


S = DeliveryState
MACHINE = Machine("delivery", DeliveryState, {
    S.pending: frozenset({S.delivered, S.failed}),
    S.delivered: frozenset({S.pending}),
    S.failed: frozenset({S.pending}),
})
can_move = MACHINE.can_move


def transition(delivery: WebhookDelivery, target: DeliveryState) -> None:
    """Move `delivery` to `target` or raise naming its current state."""
    delivery.state = MACHINE.move(delivery.state, target)
    if target == S.delivered:
        delivery.delivered_at = utcnow()
    if target != S.pending:
        delivery.next_attempt_at = None
