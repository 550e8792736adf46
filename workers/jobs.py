"""Jobs the app enqueues by dotted path ("workers.jobs.<name>")."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

from rq import get_current_job


def ping(note: str) -> dict[str, Any]:
    """Proof of life: runs in a worker process and reports which one."""
    job = get_current_job()
    if job is not None:
        job.meta["progress"] = 1.0
        job.save_meta()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
    return {"note": note, "pid": os.getpid(), "host": socket.gethostname(),
            "python": platform.python_version()}
