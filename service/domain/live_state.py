"""The live session's life: scheduled -> live -> ended (a scheduled one can be called off)."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import LiveSession, utcnow
from service.domain.states import Machine


class LiveState(StrEnum):
    scheduled = "scheduled"
    live = "live"
    ended = "ended"


S = LiveState
MACHINE = Machine("session", LiveState, {
    S.scheduled: frozenset({S.live, S.ended}),
    S.live: frozenset({S.ended}),
    S.ended: frozenset(),
})
can_move = MACHINE.can_move


def transition(session: LiveSession, target: LiveState) -> None:
    """Move `session` to `target` or raise naming its current state."""
    session.state = MACHINE.move(session.state, target)
    now = utcnow()
    if target == S.live:
        session.started_at = now
    elif target == S.ended:
        session.ended_at = now
    session.updated_at = now
