"""RQ wiring: explicit connections, queues per kind of work, jobs enqueued by dotted path.

`service` never imports `workers`; it names a job by its path, e.g. "workers.jobs.ping".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

QUEUE_NAMES = ("ingest", "reels", "live", "default")


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
                timeout: int = 600, retries: int = 3, backoff: list[int] | None = None) -> str:
        if not func.startswith("workers."):
            raise ValueError(f"jobs live under workers.: {func!r}")
        job = self._queues[queue].enqueue(
            func, *args, job_id=job_id, job_timeout=timeout,
            retry=Retry(max=retries, interval=backoff or [10, 30, 90]) if retries else None,
            result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600,
        )
        return str(job.id)

    def job(self, job_id: str) -> JobView | None:
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


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10,
                          health_check_interval=30)
