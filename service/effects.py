"""What a change causes beyond the database: jobs to queue and events to publish.

Domain code records them on the session as it works (`queue`, `publish`). They are carried
out in one place, once the transaction has committed (`carry_out`): by the app's unit of
work (`Services.transaction`) and by the jobs' (`JobContext.db`). A change that rolls back
causes nothing, and no handler or job enqueues or publishes by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service import jobs
from service.queue import Queues

_PENDING = "kumpul.effects"


@dataclass(frozen=True)
class Job:
    """A job of `service.jobs` by name, with its arguments."""

    name: str
    args: tuple[str | int, ...]
    delay: int = 0  # seconds to wait before it runs (RQ's scheduler puts it on its queue)

    def __post_init__(self) -> None:
        if self.name not in jobs.JOBS:
            raise ValueError(f"no job named {self.name!r}; jobs are {', '.join(jobs.JOBS)}")


@dataclass(frozen=True)
class Event:
    """A message for the pages listening on a Redis channel."""

    channel: str
    message: str


@dataclass(frozen=True)
class Mail:
    """A mail of the outbox (`domain/outbox.py`) to hand to the transport: after the commit,
    the mails of one transaction are queued in chunks (`jobs.send_mails`)."""

    outbox_id: int


Effect = Job | Event | Mail


def _pending(session: AsyncSession) -> list[Effect]:
    found: list[Effect] = session.info.setdefault(_PENDING, [])
    return found


def queue(session: AsyncSession, name: str, *args: str | int) -> None:
    """Queue the job `name` once this transaction commits."""
    _pending(session).append(Job(name, args))


def queue_later(session: AsyncSession, seconds: int, name: str, *args: str | int) -> None:
    """Queue the job `name` to run `seconds` after this transaction commits."""
    _pending(session).append(Job(name, args, delay=seconds))


def publish(session: AsyncSession, channel: str, data: dict[str, Any]) -> None:
    """Publish `data` on `channel` once this transaction commits."""
    _pending(session).append(Event(channel, json.dumps(data, separators=(",", ":"))))


def mail(session: AsyncSession, outbox_id: int) -> None:
    """Send the outbox's mail `outbox_id` once this transaction commits."""
    _pending(session).append(Mail(outbox_id))


def take(session: AsyncSession) -> list[Effect]:
    """The effects recorded on the session, in order; the session forgets them."""
    found: list[Effect] = session.info.pop(_PENDING, [])
    return found


def carry_out(effects: list[Effect], queues: Queues) -> None:
    """Queue the jobs and the mails, then publish the events (blocking Redis calls: the app
    runs this in a thread). Jobs have deterministic ids, so queueing one twice does the work
    once; mails go in chunks, one job per chunk."""
    for effect in effects:
        if isinstance(effect, Job) and effect.delay:
            jobs.JOBS[effect.name](queues, *effect.args, delay=effect.delay)
        elif isinstance(effect, Job):
            jobs.JOBS[effect.name](queues, *effect.args)
    mails = [effect.outbox_id for effect in effects if isinstance(effect, Mail)]
    for start in range(0, len(mails), jobs.MAIL_CHUNK):
        jobs.send_mails(queues, ",".join(map(str, mails[start:start + jobs.MAIL_CHUNK])))
    events = [effect for effect in effects if isinstance(effect, Event)]
    if len(events) > 1:
        with queues.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(event.channel, event.message)
            pipe.execute()
    elif events:
        queues.redis.publish(events[0].channel, events[0].message)
