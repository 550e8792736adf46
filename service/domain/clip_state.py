"""The clip's life: one pure function decides every move and refuses illegal ones."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from service.db.models import Clip, utcnow
from service.domain.states import Machine


class ClipState(StrEnum):
    uploading = "uploading"
    uploaded = "uploaded"
    processing = "processing"
    ready_for_review = "ready_for_review"
    approved = "approved"
    rejected = "rejected"
    invalid = "invalid"
    failed = "failed"
    withdrawn = "withdrawn"


S = ClipState
# consent can be withdrawn from any state but withdrawn
MACHINE = Machine("clip", ClipState, {
    S.uploading: frozenset({S.uploaded, S.invalid, S.withdrawn}),
    S.uploaded: frozenset({S.processing, S.invalid, S.withdrawn}),
    S.processing: frozenset({S.ready_for_review, S.invalid, S.failed, S.withdrawn}),
    S.failed: frozenset({S.processing, S.withdrawn}),
    S.ready_for_review: frozenset({S.approved, S.rejected, S.withdrawn}),
    S.approved: frozenset({S.rejected, S.withdrawn}),
    S.rejected: frozenset({S.approved, S.withdrawn}),
    S.invalid: frozenset({S.withdrawn}),
    S.withdrawn: frozenset(),
})
WORKING = frozenset({S.uploaded, S.processing})  # the reconciler watches these
can_move = MACHINE.can_move


def transition(clip: Clip, target: ClipState, *, reason: str | None = None,
               hint: str | None = None, args: dict[str, Any] | None = None) -> None:
    """Move `clip` to `target` or raise InvalidTransition naming its current state.
    `reason` and `hint` are msgids (a moderator's own note as hint is kept as written);
    `args` fill their placeholders when they are told."""
    clip.state = MACHINE.move(clip.state, target)
    clip.reason = reason
    clip.hint = hint
    clip.reason_args = args or None
    clip.updated_at = utcnow()
