"""A proposed moment's life: proposed -> accepted (a clip is cut) or discarded (which a
moderator can undo). Accepted is final: from there the clip has its own life."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import LiveMoment, utcnow
from service.domain.states import Machine


class MomentState(StrEnum):
    proposed = "proposed"
    accepted = "accepted"
    discarded = "discarded"


S = MomentState
MACHINE = Machine("moment", MomentState, {
    S.proposed: frozenset({S.accepted, S.discarded}),
    S.discarded: frozenset({S.proposed}),
    S.accepted: frozenset(),
})
can_move = MACHINE.can_move


def transition(moment: LiveMoment, target: MomentState, actor_id: int | None) -> None:
    """Move `moment` to `target` or raise naming its current state."""
    moment.state = MACHINE.move(moment.state, target)
    moment.decided_by = actor_id if target != S.proposed else None
    moment.decided_at = utcnow() if target != S.proposed else None
