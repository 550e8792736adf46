"""The moment finder of an ended session (`live_sessions.moments_state`): none until its
recording is ready; `finding` while a job measures and scores it; then `ready` or `failed`.
Moderators may ask for it again from `ready` or `failed`."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import LiveSession, utcnow
from service.domain.states import Machine


class FinderState(StrEnum):
    none = "none"
    finding = "finding"
    ready = "ready"
    failed = "failed"


S = FinderState
MACHINE = Machine("moment finder", FinderState, {
    S.none: frozenset({S.finding}),
    S.finding: frozenset({S.ready, S.failed}),
    S.ready: frozenset({S.finding}),
    S.failed: frozenset({S.finding}),
})


def transition(live: LiveSession, target: FinderState) -> None:
    """Move the session's finder to `target` or raise naming its current state."""
    live.moments_state = MACHINE.move(live.moments_state, target)
    live.updated_at = utcnow()
