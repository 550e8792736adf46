"""The jobs the app asks for, by dotted path: one place names them all.

Ids are deterministic, so asking twice for the same work queues it once. Domain code asks
for them by name through `service.effects`; nothing else enqueues.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.queue import Queues

INGEST_TIMEOUT = 600  # seconds; the reconciler's deadline (settings) must exceed it
HEAVY_TIMEOUT = 2400  # a heavy clip: its plan and, after a timeout, one cheaper plan
HEAVY_DEADLINE = HEAVY_TIMEOUT + 300
REEL_TIMEOUT = 1800
REEL_DEADLINE = REEL_TIMEOUT + 300  # a render not done by then is queued again


def ping(queues: Queues, note: str) -> str:
    return queues.enqueue("default", "workers.jobs.ping", note, timeout=60, retries=0)


def ingest_clip(queues: Queues, clip_id: str) -> str:
    return queues.enqueue("ingest", "workers.ingest.ingest_clip", clip_id,
                          job_id=f"ingest-{clip_id}", timeout=INGEST_TIMEOUT, retries=3,
                          backoff=[30, 120, 300])


def ingest_heavy(queues: Queues, clip_id: str, plan: str) -> str:
    """A clip above the processing budget, on its own lane. Never retried by RQ: a timeout
    is answered by a cheaper plan or a reason, and a dead worker by the reconciler."""
    return queues.enqueue("heavy", "workers.ingest.ingest_heavy", clip_id, plan,
                          job_id=f"ingest-heavy-{clip_id}", timeout=HEAVY_TIMEOUT, retries=0)


def purge_clip(queues: Queues, clip_id: str) -> str:
    return queues.enqueue("default", "workers.jobs.purge_clip_media", clip_id,
                          job_id=f"purge-{clip_id}", timeout=300)


def render_reel(queues: Queues, reel_id: str, version: int) -> str:
    return queues.enqueue("reels", "workers.reels.render_reel", reel_id, version,
                          job_id=render_job_id(reel_id, version), timeout=REEL_TIMEOUT,
                          retries=2, backoff=[10, 60])


def render_job_id(reel_id: str, version: int) -> str:
    return f"reel-{reel_id}-v{version}"


def render_recording(queues: Queues, session_id: str) -> str:
    return queues.enqueue("live", "workers.live.render_recording", session_id,
                          job_id=f"recording-{session_id}", timeout=4 * 3600, retries=2,
                          backoff=[30, 300])


def find_moments(queues: Queues, session_id: str) -> str:
    return queues.enqueue("live", "workers.moments.find_moments", session_id,
                          job_id=f"moments-{session_id}", timeout=3600, retries=2,
                          backoff=[30, 300])


MAIL_CHUNK = 500  # mails per delivery job
MAIL_BACKOFF = [30, 120, 600, 1800, 3600]  # seconds between tries of a refused mail
NOTIFY_CHUNK = 500  # people per fan-out job


def send_mails(queues: Queues, ids: str) -> str:
    """Hand a chunk of the outbox's mails ("12,13,14") to the transport; retried with
    backoff, and a mail still refused on the last try is marked failed."""
    first, _, rest = ids.partition(",")
    return queues.enqueue("default", "workers.mail.send_mails", ids,
                          job_id=f"mail-{first}-{rest.count(',') + 1 if rest else 1}",
                          timeout=600, retries=len(MAIL_BACKOFF), backoff=MAIL_BACKOFF)


def announce(queues: Queues, key: str) -> str:
    """Tell the audience of an announcement (`domain/notifications.py`): a small one at
    once, a large one in chunks (`notify_chunk`)."""
    return queues.enqueue("default", "workers.notify.announce", key,
                          job_id=f"announce-{_safe(key)}", timeout=300, retries=3,
                          backoff=[10, 60, 300])


def notify_chunk(queues: Queues, key: str, user_ids: str) -> str:
    """One chunk of an announcement's audience ("4,5,6"): their notices and mails."""
    first = user_ids.partition(",")[0]
    return queues.enqueue("default", "workers.notify.notify_chunk", key, user_ids,
                          job_id=f"notify-{_safe(key)}-{first}", timeout=600, retries=3,
                          backoff=[10, 60, 300])


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in key)


WEBHOOK_JOB_TIMEOUT = 90  # seconds; above KUMPUL_WEBHOOK_TIMEOUT_SECONDS' ceiling (60)


def deliver_webhook(queues: Queues, delivery_id: int, round_: int, attempt: int, *,
                    delay: int = 0) -> str:
    """One attempt of a webhook delivery. The retries are the delivery's own schedule
    (`domain.deliveries`), each a job of its own; RQ retries only a crashed attempt."""
    return queues.enqueue("default", "workers.webhooks.deliver_webhook", delivery_id, round_,
                          attempt, job_id=f"webhook-{delivery_id}-{round_}-{attempt}",
                          timeout=WEBHOOK_JOB_TIMEOUT, retries=1, backoff=[30], delay=delay)


JOBS: dict[str, Callable[..., Any]] = {
    job.__name__: job
    for job in (ingest_clip, ingest_heavy, purge_clip, render_reel, render_recording, find_moments,
                send_mails, announce, notify_chunk, deliver_webhook)
}
