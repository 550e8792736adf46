"""Webhook deliveries: events become deliveries, attempts are recorded, retries scheduled.

Domain code calls `emit` inside its transaction: a delivery row for every enabled endpoint
of the community that asked for the event type, and a job (`deliver_webhook`) to send it,
queued only once the transaction commits (`service.effects`). A rolled-back change sends
nothing; a lost queue loses nothing (`requeue_overdue` finds what is due). Delivery is at
least once: the job claims an attempt (`attempt`), sends outside any transaction, then
`record`s the answer: delivered on a 2xx, else the next retry of the schedule, else failed.
An endpoint that failed for a whole schedule without one success is disabled and its owners
are told (the admin page, and a mail in the outbox).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from service import effects, i18n
from service.db.models import (
    Clip,
    Community,
    LiveMoment,
    LiveSession,
    Membership,
    Reel,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from service.domain import audit, outbox
from service.domain.communities import Access
from service.domain.delivery_state import DeliveryState, transition
from service.domain.roles import Role
from service.domain.webhooks import EVENT_TYPES, get, signing_secrets
from service.errors import Conflict, NotFound
from service.i18n import N_
from service.mail import Mail

KEEP = 200  # deliveries kept per endpoint (the log); older finished ones are pruned
REQUEUE_GRACE = timedelta(minutes=2)  # a due attempt not started by then is queued again
USER_AGENT = "Kumpul-Webhooks/1"


def message(event_type: str, data: dict[str, Any], at: datetime | None = None
            ) -> dict[str, Any]:
    """A Standard Webhooks payload: type, timestamp and the event's data."""
    return {"type": event_type, "timestamp": (at or utcnow()).isoformat(), "data": data}


async def emit(session: AsyncSession, community_id: int, event_type: str,
               data: dict[str, Any]) -> list[WebhookDelivery]:
    """Record the event for every enabled endpoint of the community that wants it; each is
    sent by a job once this transaction commits."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = [e for e in await session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.community_id == community_id, WebhookEndpoint.disabled_at.is_(None)))
        if event_type in e.event_types]
    if not endpoints:
        return []
    community = await session.get(Community, community_id)
    payload = message(event_type, {"community": community.slug if community else None, **data})
    made = [WebhookDelivery(endpoint_id=e.id, message_id="msg_" + secrets.token_hex(14),
                            event_type=event_type, payload=payload,
                            state=DeliveryState.pending, attempts=0, round=0,
                            next_attempt_at=utcnow()) for e in endpoints]
    session.add_all(made)
    await session.flush()
    for delivery in made:
        effects.queue(session, "deliver_webhook", delivery.id, 0, 0)
    for endpoint in endpoints:
        await _prune(session, endpoint.id)
    return made


def _when(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def clip_data(clip: Clip) -> dict[str, Any]:
    """A clip as integrators see it (the schema `WebhookClip` in the OpenAPI document)."""
    return {"clip": {"id": clip.id, "state": clip.state, "title": clip.title,
                     "prompt_id": clip.prompt_id, "member_id": clip.member_id,
                     "source": clip.source, "reason": clip.reason,
                     "updated_at": _when(clip.updated_at or utcnow())}}


def reel_data(reel: Reel) -> dict[str, Any]:
    return {"reel": {"id": reel.id, "slug": reel.slug, "title": reel.title,
                     "state": reel.state, "version": reel.public_version,
                     "published_at": _when(reel.published_at)}}


def live_data(live: LiveSession) -> dict[str, Any]:
    return {"session": {"id": live.id, "title": live.title, "state": live.state,
                        "host_id": live.host_id, "starts_at": _when(live.starts_at),
                        "started_at": _when(live.started_at),
                        "ended_at": _when(live.ended_at)}}


def moment_data(moment: LiveMoment) -> dict[str, Any]:
    return {"moment": {"id": moment.id, "session_id": moment.session_id,
                       "start_ms": moment.start_ms, "end_ms": moment.end_ms,
                       "score": moment.score, "state": moment.state}}


async def _prune(session: AsyncSession, endpoint_id: str) -> None:
    """Keep the log bounded: finished deliveries beyond the newest KEEP go."""
    cut = await session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.endpoint_id == endpoint_id).order_by(
        WebhookDelivery.id.desc()).offset(KEEP).limit(1))
    if cut is not None:
        await session.execute(delete(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id <= cut,
            WebhookDelivery.state != DeliveryState.pending))


@dataclass(frozen=True)
class Attempt:
    """What one attempt sends: where, the body, and its signed Standard Webhooks headers."""

    delivery_id: int
    url: str
    body: bytes
    headers: dict[str, str]


def signed(msg_id: str, body: str, keys: list[str], at: datetime) -> dict[str, str]:
    """Standard Webhooks headers; one `v1,` signature per valid secret (rotation)."""
    signature = " ".join(Webhook(key).sign(msg_id, at, body) for key in keys)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature, "content-type": "application/json",
            "user-agent": USER_AGENT}


async def attempt(session: AsyncSession, delivery_id: int, round_: int,
                  number: int) -> Attempt | None:
    """The attempt `number` of the delivery's round, signed now; None when it is not due
    (done, sent again meanwhile, or already made by another copy of the job). A disabled or
    deleted endpoint's pending delivery fails here."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.state != DeliveryState.pending \
            or delivery.round != round_ or delivery.attempts != number:
        return None
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or endpoint.disabled_at is not None:
        delivery.last_error = "the endpoint is disabled"
        transition(delivery, DeliveryState.failed)
        return None
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
    headers = signed(delivery.message_id, body, signing_secrets(endpoint), utcnow())
    return Attempt(delivery.id, endpoint.url, body.encode(), headers)


@dataclass(frozen=True)
class Outcome:
    """How an attempt went: an HTTP status (None: no answer), time taken, what came back."""

    status: int | None
    latency_ms: int | None
    excerpt: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def record(session: AsyncSession, delivery_id: int, round_: int, number: int,
                 outcome: Outcome, *, schedule: tuple[int, ...],
                 mail_transport: str) -> str:
    """Write the attempt's outcome; schedule the next retry, or fail the delivery (and
    disable an endpoint that has not succeeded for a whole schedule). Returns the
    delivery's state, or "skipped" when another copy of the job recorded this attempt."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.state != DeliveryState.pending \
            or delivery.round != round_ or delivery.attempts != number:
        return "skipped"
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    delivery.attempts = number + 1
    delivery.last_status, delivery.last_latency_ms = outcome.status, outcome.latency_ms
    delivery.last_response = outcome.excerpt[:1000] or None
    delivery.last_error = (outcome.error or "")[:500] or None
    if outcome.ok:
        transition(delivery, DeliveryState.delivered)
        if endpoint is not None:
            endpoint.last_success_at = utcnow()
        return delivery.state
    if delivery.last_error is None and outcome.status is not None:
        delivery.last_error = (f"HTTP {outcome.status}: redirects are not followed"
                               if 300 <= outcome.status < 400 else f"HTTP {outcome.status}")
    if number < len(schedule) and endpoint is not None and endpoint.disabled_at is None:
        wait = schedule[number]
        delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
        effects.queue_later(session, wait, "deliver_webhook", delivery.id, round_, number + 1)
        return delivery.state
    transition(delivery, DeliveryState.failed)
    window = timedelta(seconds=sum(schedule))
    if endpoint is not None and endpoint.disabled_at is None and (
            endpoint.last_success_at is None or endpoint.last_success_at < utcnow() - window):
        await _disable_failing(session, endpoint, delivery, mail_transport)
    return delivery.state


async def _disable_failing(session: AsyncSession, endpoint: WebhookEndpoint,
                           delivery: WebhookDelivery, mail_transport: str) -> None:
    endpoint.disabled_at, endpoint.disabled_reason = utcnow(), "failing"
    audit.record(session, action="webhook.disabled", subject_type="webhook",
                 subject_id=endpoint.id, actor_id=None, community_id=endpoint.community_id,
                 data={"because": "failing", "last_error": delivery.last_error,
                       "delivery": delivery.id})
    community = await session.get(Community, endpoint.community_id)
    if community is None:
        return
    owners = await session.scalars(select(User).join(
        Membership, Membership.user_id == User.id).where(
        Membership.community_id == community.id, Membership.role == Role.owner))
    for owner in owners:
        speech = i18n.Speech.of(owner.language or community.language,
                                owner.time_zone or community.time_zone)
        params = {"url": endpoint.url, "community": community.name,
                  "error": delivery.last_error or "-", "slug": community.slug}
        await outbox.send(session, mail_transport, Mail(
            owner.email, speech.text(N_("Webhook disabled in %(community)s"), params)[:200],
            speech.text(N_(
                "Kumpul stopped sending webhooks to %(url)s: every attempt failed for a whole "
                "day of retries (the last: %(error)s).\n\nWhen the receiver works again, "
                "enable the endpoint on the Webhooks page of %(community)s and send the "
                "failed deliveries again: /c/%(slug)s/admin/webhooks\n"), params)))


async def send_again(session: AsyncSession, access: Access, endpoint_id: str,
                     delivery_id: int) -> WebhookDelivery:
    """Send one delivery again (a new round of attempts, the same webhook-id)."""
    endpoint = await get(session, access, endpoint_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("No such delivery.", code="delivery_not_found")
    if endpoint.disabled_at is not None:
        raise Conflict("This endpoint is disabled.", code="webhook_disabled",
                       hint="Enable it first, then send again.")
    if delivery.state == DeliveryState.pending:
        raise Conflict("This delivery is still being sent.", code="delivery_pending")
    transition(delivery, DeliveryState.pending)
    delivery.round += 1
    delivery.attempts, delivery.next_attempt_at = 0, utcnow()
    effects.queue(session, "deliver_webhook", delivery.id, delivery.round, 0)
    audit.record(session, action="webhook.sent_again", subject_type="webhook",
                 subject_id=endpoint.id, actor_id=access.user.id,
                 community_id=access.community.id, data={"delivery": delivery.id})
    return delivery


async def requeue_overdue(session: AsyncSession, timeout_seconds: int) -> int:
    """Queue again the attempts that were due a while ago but never ran (a lost queue, a
    dead worker): the database says what is left to send."""
    before = utcnow() - REQUEUE_GRACE - timedelta(seconds=timeout_seconds)
    rows = list(await session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.state == DeliveryState.pending,
        WebhookDelivery.next_attempt_at < before)))
    for delivery in rows:
        delivery.next_attempt_at = utcnow()
        effects.queue(session, "deliver_webhook", delivery.id, delivery.round,
                      delivery.attempts)
    return len(rows)
