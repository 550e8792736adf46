"""A session's recordings go to storage when it ends: the host's file becomes
`live/{id}/recording.webm` (or `.mkv`), whose rendition a job then makes; each guest's turn
on stage becomes `live/{id}/guest-{n}.webm`. The files are on this node's disk, so this node
ships them (in a thread: the event loop never waits on storage)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain import live
from service.live.recorder import HOST, Recording
from service.storage import ObjectStore
from service.storage.keys import live_recording

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def store(store: ObjectStore, transaction: Transaction, session_id: str,
                recordings: list[Recording]) -> None:
    """Upload each recording, delete its local file, and mark the host's as stored."""
    for recording in recordings:
        key = live_recording(session_id, recording.name + recording.path.suffix)
        await anyio.to_thread.run_sync(store.put_file, key, recording.path,
                                       recording.content_type)
        recording.path.unlink(missing_ok=True)
        if recording.name == HOST:
            async with transaction() as session:
                await live.recording_stored(session, session_id, key)
