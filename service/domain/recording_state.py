"""A live session's recording: none until the session ends with one; then `processing`
while a worker makes its web rendition, `ready` (highlights can be found) or `failed`
(which a retried job takes up again)."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import LiveSession, utcnow
from service.domain.states import Machine


class RecordingState(StrEnum):
    none = "none"
    processing = "processing"
    ready = "ready"
    failed = "failed"


S = RecordingState
MACHINE = Machine("recording", RecordingState, {
    S.none: frozenset({S.processing}),
    S.processing: frozenset({S.ready, S.failed}),
    S.failed: frozenset({S.processing}),
    S.ready: frozenset(),
})


def transition(live: LiveSession, target: RecordingState) -> None:
    """Move the session's recording to `target` or raise naming its current state."""
    live.recording_state = MACHINE.move(live.recording_state, target)
    live.updated_at = utcnow()
