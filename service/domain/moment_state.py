"""A proposed moment's life: proposed -> accepted (a clip is cut) or discarded (which a
moderator can undo). Accepted is final: from there the clip has its own life."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import LiveMoment, utcnow
from service.domain.clip_state import InvalidTransition


class MomentState(StrEnum):
    proposed = "proposed"
    accepted = "accepted"
    discarded = "discarded"


S = MomentState
MOVES: dict[MomentState, frozenset[MomentState]] = {
    S.proposed: frozenset({S.accepted, S.discarded}),
    S.discarded: frozenset({S.proposed}),
    S.accepted: frozenset(),
}


def can_move(current: MomentState | str, target: MomentState | str) -> bool:
    return MomentState(target) in MOVES[MomentState(current)]


def transition(moment: LiveMoment, target: MomentState, actor_id: int | None) -> None:
    """Move `moment` to `target` or raise naming its current state."""
    if not can_move(moment.state, target):
        raise InvalidTransition(moment.state, target, "moment")
    moment.state = target
    moment.decided_by = actor_id if target != S.proposed else None
    moment.decided_at = utcnow() if target != S.proposed else None
