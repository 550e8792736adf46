"""RQ wiring: explicit connections, queues per kind of work, jobs enqueued by dotted path.

`service` never imports `workers`; it names a job by its path, e.g. "workers.jobs.ping".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

QUEUE_NAMES = ("ingest", "reels", "heavy", "live", "default")
# The lanes `kumpul serve` gives its workers, so that long work (a heavy clip, a reel, a
# live recording) never holds up a short story: with three or more workers, one lane each
# in turn; with two, short work and long work; with one, every queue.
LANES = (("ingest", "default"), ("reels", "ingest", "default"), ("heavy", "live", "default"))


def lanes(workers: int) -> list[tuple[str, ...]]:
    """The queues of each of `workers` workers, most urgent first."""
    if workers <= 1:
        return [tuple(QUEUE_NAMES)][:workers]
    if workers == 2:
        return [("ingest", "reels", "default"), ("heavy", "live", "default")]
    return [LANES[n % len(LANES)] for n in range(workers)]


@dataclass(frozen=True)
class JobView:
    id: str
    status: str
    result: Any
    error: str | None
    meta: dict[str, Any]


class Queues:
    """The app's handle on RQ. Calls block briefly on Redis: run them in a thread."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queues = {name: Queue(name, connection=redis) for name in QUEUE_NAMES}

    def enqueue(self, queue: str, func: str, *args: Any, job_id: str | None = None,
                timeout: int = 600, retries: int = 3, backoff: list[int] | None = None,
                delay: int = 0) -> str:
        """Queue `func`; with `delay`, RQ's scheduler (in every `kumpul worker`) puts it on
        the queue that many seconds from now."""
        if not func.startswith("workers."):
            raise ValueError(f"jobs live under workers.: {func!r}")
        options: dict[str, Any] = dict(
            job_id=job_id, job_timeout=timeout,
            retry=Retry(max=retries, interval=backoff or [10, 30, 90]) if retries else None,
            result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600)
        if delay:
            job = self._queues[queue].enqueue_in(timedelta(seconds=delay), func, *args, **options)
        else:
            job = self._queues[queue].enqueue(func, *args, **options)
        return str(job.id)

    def job(self, job_id: str) -> JobView | None:
        if not job_id.isascii() or not job_id.replace("-", "").replace("_", "").isalnum():
            return None  # not a job id RQ could have made
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return None
        status = job.get_status(refresh=False)
        error = None
        if job.is_failed:
            info = job.latest_result()
            error = (info.exc_string or "").strip().splitlines()[-1] if info else "failed"
        return JobView(id=str(job.id), status=str(status.value if status else "unknown"),
                       result=job.return_value(), error=error, meta=dict(job.meta or {}))


@dataclass(frozen=True)
class FailedJob:
    queue: str
    id: str
    func: str
    error: str
    ended_at: str


def failed_jobs(redis: Redis) -> list[FailedJob]:
    """Jobs out of retries, newest first, with the last line of their error."""
    found = []
    for name in QUEUE_NAMES:
        registry = FailedJobRegistry(name, connection=redis)
        for job in Job.fetch_many(registry.get_job_ids(), connection=redis):
            if job is None:
                continue
            result = job.latest_result()
            error = (result.exc_string or "").strip().splitlines() if result else []
            found.append(FailedJob(name, str(job.id), str(job.func_name),
                                   error[-1] if error else "unknown error",
                                   job.ended_at.isoformat() if job.ended_at else ""))
    return sorted(found, key=lambda f: f.ended_at, reverse=True)


def retry_failed(redis: Redis, job_id: str) -> str:
    """Put a failed job back on its queue; returns the queue's name."""
    for name in QUEUE_NAMES:
        registry = FailedJobRegistry(name, connection=redis)
        if job_id in registry.get_job_ids():
            registry.requeue(job_id)
            return name
    raise LookupError(f"no failed job {job_id!r}")


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10,
                          health_check_interval=30)
