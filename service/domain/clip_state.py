"""The clip's life: one pure function decides every move and refuses illegal ones."""

from __future__ import annotations

from enum import StrEnum

from service.db.models import Clip, utcnow
from service.errors import Conflict


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
MOVES: dict[ClipState, frozenset[ClipState]] = {
    S.uploading: frozenset({S.uploaded, S.invalid}),
    S.uploaded: frozenset({S.processing, S.invalid}),
    S.processing: frozenset({S.ready_for_review, S.invalid, S.failed}),
    S.failed: frozenset({S.processing}),
    S.ready_for_review: frozenset({S.approved, S.rejected}),
    S.approved: frozenset({S.rejected}),
    S.rejected: frozenset({S.approved}),
    S.invalid: frozenset(),
    S.withdrawn: frozenset(),
}
WORKING = frozenset({S.uploaded, S.processing})  # the reconciler watches these


class InvalidTransition(Conflict):
    """An illegal move of a state machine (clips, reels); the message names the state."""

    code = "invalid_transition"

    def __init__(self, current: str, target: str, noun: str = "clip") -> None:
        super().__init__(f"Cannot move a {noun} that is {current!r} to {target!r}.")
        self.current = current
        self.target = target


def can_move(current: ClipState | str, target: ClipState | str) -> bool:
    target = ClipState(target)
    if target == S.withdrawn:  # consent can be withdrawn from any state but withdrawn
        return ClipState(current) != S.withdrawn
    return target in MOVES[ClipState(current)]


def transition(clip: Clip, target: ClipState, *, reason: str | None = None,
               hint: str | None = None) -> None:
    """Move `clip` to `target` or raise InvalidTransition naming its current state."""
    if not can_move(clip.state, target):
        raise InvalidTransition(clip.state, target)
    clip.state = target
    clip.reason = reason
    clip.hint = hint
    clip.updated_at = utcnow()
