"""The reel's life: one pure function decides every move and refuses illegal ones."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import Reel, utcnow
from service.domain.states import Machine


class ReelState(StrEnum):
    draft = "draft"
    rendering = "rendering"
    rendered = "rendered"
    published = "published"
    unpublished = "unpublished"
    failed = "failed"
    stale = "stale"  # a clip in it was withdrawn: re-rendered without it, or unpublished


S = ReelState
MACHINE = Machine("reel", ReelState, {
    S.draft: frozenset({S.rendering}),
    # a render that was asked for while the reel was public publishes itself when done
    S.rendering: frozenset({S.rendered, S.published, S.failed, S.stale}),
    S.rendered: frozenset({S.rendering, S.published, S.stale}),
    S.published: frozenset({S.unpublished, S.rendering, S.stale}),
    S.unpublished: frozenset({S.published, S.rendering, S.stale}),
    S.failed: frozenset({S.rendering, S.stale}),
    S.stale: frozenset({S.rendering, S.unpublished}),
})
WORKING = frozenset({S.rendering})  # the reconciler watches these
EDITABLE = frozenset(set(S) - {S.rendering})
can_move = MACHINE.can_move


def transition(reel: Reel, target: ReelState, *, reason: str | None = None) -> None:
    """Move `reel` to `target` or raise naming its current state."""
    reel.state = MACHINE.move(reel.state, target)
    reel.reason = reason
    reel.updated_at = utcnow()
