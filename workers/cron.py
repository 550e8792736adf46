"""`python -m workers.cron`: RQ's cron scheduler enqueues the periodic upkeep jobs."""

from __future__ import annotations

import sys

from rq.cron import CronScheduler

from service import logs
from service.queue import redis_client
from service.settings import load_for_command
from workers import jobs, notify

SCHEDULE = (
    # (job, queue, every N seconds)
    (jobs.expire_uploads, "default", 600),
    (jobs.reconcile, "default", 60),
    (notify.remind_soon, "default", 60),
)


def main() -> int:
    settings = load_for_command()
    logs.configure(settings.log_level)
    scheduler = CronScheduler(connection=redis_client(settings.redis_url),
                              logging_level=settings.log_level.upper())
    for func, queue, seconds in SCHEDULE:
        scheduler.register(func, queue, interval=seconds, job_timeout=300)
    scheduler.start()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
    return 0


if __name__ == "__main__":
    sys.exit(main())
