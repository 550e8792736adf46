"""The jobs the app asks for, by dotted path: one place names them all.

Ids are deterministic, so asking twice for the same work queues it once.
"""

from __future__ import annotations

from service.queue import Queues

INGEST_TIMEOUT = 600  # seconds; the reconciler's deadline (settings) must exceed it


def ingest_clip(queues: Queues, clip_id: str) -> str:
    return queues.enqueue("ingest", "workers.ingest.ingest_clip", clip_id,
                          job_id=f"ingest-{clip_id}", timeout=INGEST_TIMEOUT, retries=3,
                          backoff=[30, 120, 300])


def purge_clip(queues: Queues, clip_id: str) -> str:
    return queues.enqueue("default", "workers.jobs.purge_clip_media", clip_id,
                          job_id=f"purge-{clip_id}", timeout=300)
