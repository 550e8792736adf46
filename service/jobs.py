"""The jobs the app asks for, by dotted path: one place names them all.

Ids are deterministic, so asking twice for the same work queues it once.
"""

from __future__ import annotations

from service.queue import Queues


def probe_clip(queues: Queues, clip_id: str) -> str:
    return queues.enqueue("ingest", "workers.jobs.probe_clip", clip_id,
                          job_id=f"probe-{clip_id}", timeout=600)


def purge_clip(queues: Queues, clip_id: str) -> str:
    return queues.enqueue("default", "workers.jobs.purge_clip_media", clip_id,
                          job_id=f"purge-{clip_id}", timeout=300)
