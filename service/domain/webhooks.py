"""Webhook endpoints of a community, managed by its owners: create, change the event types,
disable and enable, delete, rotate the secret (the old one keeps signing for a while).

Secrets follow Standard Webhooks: `whsec_` and 32 random bytes in base64. An endpoint's URL
must name a public address (`service.outbound`) unless the operator allows its host.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum

import anyio.to_thread
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service import outbound
from service.db.models import WebhookDelivery, WebhookEndpoint, utcnow
from service.domain import audit
from service.domain.communities import Access
from service.domain.paging import Page
from service.domain.text import one_line
from service.errors import Conflict, NotFound, Unprocessable
from service.i18n import N_

MAX_ENDPOINTS = 20  # per community


class EventType(StrEnum):
    clip_ready_for_review = "clip.ready_for_review"
    clip_approved = "clip.approved"
    clip_rejected = "clip.rejected"
    clip_withdrawn = "clip.withdrawn"
    reel_published = "reel.published"
    reel_unpublished = "reel.unpublished"
    live_started = "live.started"
    live_ended = "live.ended"
    moment_proposed = "moment.proposed"


EVENT_TYPES = tuple(str(e) for e in EventType)

# Why Kumpul refuses a URL, in words people read (`outbound` says it in English).
REFUSALS = {
    "not a URL": N_("Webhooks can't go to this URL: it is not a URL."),
    "only http and https URLs": N_("Webhooks can't go to this URL: only http:// and https:// "
                                   "URLs receive them."),
    "no user name or password in the URL": N_("Webhooks can't go to this URL: put no user "
                                              "name or password in it."),
    "not a valid port": N_("Webhooks can't go to this URL: its port is not valid."),
    "no host": N_("Webhooks can't go to this URL: it names no host."),
    "the host name does not resolve": N_("Webhooks can't go to this URL: %(address)s does not "
                                         "resolve."),
    "not a public address": N_("Webhooks can't go to this URL: it points to %(address)s, "
                               "which is not a public address."),
}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def refused(exc: outbound.Refused) -> Unprocessable:
    """The API error for an address Kumpul will not call."""
    message = REFUSALS.get(exc.why, REFUSALS["not a URL"])
    return Unprocessable(message, code="webhook_url_refused", address=exc.address or "-",
                         hint="Use a public https:// address of your receiver.")


async def check_url(url: object, allow: Iterable[str]) -> str:
    """The URL, once its host resolves to public addresses only (or is allowed)."""
    text = str(url or "").strip()
    try:
        await anyio.to_thread.run_sync(outbound.destination, text, tuple(allow))
    except outbound.Refused as exc:
        raise refused(exc) from None
    return text


def event_types(raw: object) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise Unprocessable("event_types must be a list of event types: %(choices)s.",
                            choices=", ".join(EVENT_TYPES), code="invalid_event_types")
    unknown = [t for t in raw if t not in EVENT_TYPES]
    if unknown:
        raise Unprocessable("Unknown event type %(name)s; choose from %(choices)s.",
                            name=unknown[0], choices=", ".join(EVENT_TYPES),
                            code="invalid_event_types")
    return [t for t in EVENT_TYPES if t in raw]  # in the catalog's order, once each


async def create(session: AsyncSession, access: Access, *, url: object, types: object,
                 description: object, allow: Iterable[str]) -> WebhookEndpoint:
    chosen = event_types(types)
    checked = await check_url(url, allow)
    count = await session.scalar(select(func.count()).select_from(WebhookEndpoint).where(
        WebhookEndpoint.community_id == access.community.id))
    if (count or 0) >= MAX_ENDPOINTS:
        raise Conflict("A community has at most %(limit)s webhook endpoints.",
                       limit=MAX_ENDPOINTS, code="too_many_endpoints",
                       hint="Delete one you no longer use.")
    endpoint = WebhookEndpoint(
        id="ep_" + secrets.token_hex(12), community_id=access.community.id, url=checked,
        description=one_line(description, 200), event_types=chosen, secret=new_secret(),
        created_by=access.user.id)
    session.add(endpoint)
    await session.flush()
    audit.record(session, action="webhook.created", subject_type="webhook",
                 subject_id=endpoint.id, actor_id=access.user.id,
                 community_id=access.community.id, data={"url": checked, "types": chosen})
    return endpoint


async def of_community(session: AsyncSession, access: Access) -> list[WebhookEndpoint]:
    return list(await session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.community_id == access.community.id).order_by(
        WebhookEndpoint.created_at, WebhookEndpoint.id)))


async def get(session: AsyncSession, access: Access, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.community_id != access.community.id:
        raise NotFound("No such webhook endpoint.", code="webhook_not_found")
    return endpoint


async def update(session: AsyncSession, access: Access, endpoint: WebhookEndpoint, *,
                 types: object = None, description: object = None, enabled: object = None,
                 url: object = None, allow: Iterable[str] = ()) -> WebhookEndpoint:
    """Change what an endpoint receives, its description or URL, or switch it on or off."""
    changes: dict[str, object] = {}
    if types is not None:
        endpoint.event_types = changes["types"] = event_types(types)
    if description is not None:
        endpoint.description = changes["description"] = one_line(description, 200)
    if url is not None:
        endpoint.url = changes["url"] = await check_url(url, allow)
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise Unprocessable("enabled must be true or false.", code="invalid_enabled")
        if enabled and endpoint.disabled_at is not None:
            endpoint.disabled_at, endpoint.disabled_reason = None, None
            changes["enabled"] = True
        elif not enabled and endpoint.disabled_at is None:
            endpoint.disabled_at, endpoint.disabled_reason = utcnow(), "owner"
            changes["enabled"] = False
    if changes:
        endpoint.updated_at = utcnow()
        audit.record(session, action="webhook.changed", subject_type="webhook",
                     subject_id=endpoint.id, actor_id=access.user.id,
                     community_id=access.community.id, data=changes)
    return endpoint


async def delete(session: AsyncSession, access: Access, endpoint: WebhookEndpoint) -> None:
    await session.delete(endpoint)
    audit.record(session, action="webhook.deleted", subject_type="webhook",
                 subject_id=endpoint.id, actor_id=access.user.id,
                 community_id=access.community.id, data={"url": endpoint.url})


async def rotate(session: AsyncSession, access: Access, endpoint: WebhookEndpoint,
                 overlap_hours: int) -> WebhookEndpoint:
    """A new secret; the current one keeps signing too for `overlap_hours`."""
    endpoint.previous_secret = endpoint.secret if overlap_hours else None
    endpoint.previous_secret_expires_at = (utcnow() + timedelta(hours=overlap_hours)
                                           if overlap_hours else None)
    endpoint.secret = new_secret()
    endpoint.updated_at = utcnow()
    audit.record(session, action="webhook.secret_rotated", subject_type="webhook",
                 subject_id=endpoint.id, actor_id=access.user.id,
                 community_id=access.community.id, data={"overlap_hours": overlap_hours})
    return endpoint


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one while
    its overlap lasts."""
    found = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at \
            and endpoint.previous_secret_expires_at > utcnow():
        found.append(endpoint.previous_secret)
    return found


async def deliveries(session: AsyncSession, endpoint: WebhookEndpoint,
                     page: Page) -> list[WebhookDelivery]:
    """The endpoint's delivery log, newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id).order_by(
        WebhookDelivery.id.desc())
    return list(await session.scalars(page.window(query)))
