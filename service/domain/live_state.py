"""The live session's life: scheduled -> live -> ended (a scheduled one can be called off)."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import LiveSession, utcnow
from service.domain.clip_state import InvalidTransition


class LiveState(StrEnum):
    scheduled = "scheduled"
    live = "live"
    ended = "ended"


S = LiveState
MOVES: dict[LiveState, frozenset[LiveState]] = {
    S.scheduled: frozenset({S.live, S.ended}),
    S.live: frozenset({S.ended}),
    S.ended: frozenset(),
}


def can_move(current: LiveState | str, target: LiveState | str) -> bool:
    return LiveState(target) in MOVES[LiveState(current)]


def transition(session: LiveSession, target: LiveState) -> None:
    """Move `session` to `target` or raise naming its current state."""
    if not can_move(session.state, target):
        raise InvalidTransition(session.state, target, "session")
    session.state = target
    now = utcnow()
    if target == S.live:
        session.started_at = now
    elif target == S.ended:
        session.ended_at = now
    session.updated_at = now
