"""The parts every job shares: marking the work failed on its last try, and progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rq import get_current_job


@contextmanager
def failing(mark: Callable[[str], object],
            final: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Run a job's work. When it raises on the job's last try, or raises one of `final`
    (never worth another try), `mark(error)` records the failure; the error goes on."""
    try:
        yield
    except Exception as exc:
        job = get_current_job()
        if isinstance(exc, final) or job is None or not job.retries_left:
            mark(repr(exc))
        raise


def reporter(also: Callable[[float], object] | None = None,
             every: float = 0.5) -> Callable[[float], None]:
    """Progress (0..1) into the job's meta, where pages read it, and to `also` (e.g. the
    member's open page); at most once every `every` seconds, and always at the end."""
    job = get_current_job()
    last = 0.0

    def report(fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < every and fraction < 1.0:
            return
        last = now
        fraction = round(min(fraction, 1.0), 3)
        if job is not None:
            job.meta["progress"] = fraction
            job.save_meta()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        if also is not None:
            also(fraction)

    return report
