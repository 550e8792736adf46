"""The worker command: one RQ worker on the queues given, with explicit connections."""

from __future__ import annotations

import importlib
import logging

from rq import Worker

from service.queue import QUEUE_NAMES, redis_client
from service.settings import Settings

log = logging.getLogger("kumpul.worker")
PRELOAD = ("workers.jobs", "workers.mail", "workers.notify")


def run_worker(settings: Settings, queues: list[str] | None = None, *, burst: bool = False,
               name: str | None = None) -> bool:
    """Work until stopped (or, with burst, until the queues are empty)."""
    names = queues or list(QUEUE_NAMES)
    unknown = sorted(set(names) - set(QUEUE_NAMES))
    if unknown:
        raise SystemExit(f"unknown queue {unknown[0]!r}; queues are: {', '.join(QUEUE_NAMES)}")
    # RQ forks a work horse per job: modules the parent has imported are not imported again
    # in every child (a chunk of mails is a short job; importing the domain is not)
    for module in PRELOAD:
        importlib.import_module(module)
    connection = redis_client(settings.redis_url)
    worker = Worker(names, connection=connection, name=name)
    log.info("worker starting", extra={"queues": names, "burst": burst})
    # The scheduler moves jobs waiting on a Retry interval back onto their queue.
    return bool(worker.work(burst=burst, logging_level=settings.log_level.upper(),
                            with_scheduler=True))
