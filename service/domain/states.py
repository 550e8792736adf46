"""What every state machine shares: a table of moves, one checked move, one error.

Each aggregate's module (`clip_state`, `reel_state`, `live_state`, `moment_state`,
`recording_state`, `finder_state`) declares its states and its table as a `Machine`, and its
`transition()` moves a row through `Machine.move`, the only place a move is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from service.errors import Conflict

S = TypeVar("S", bound=StrEnum)


class InvalidTransition(Conflict):
    """An illegal move of a state machine; the message names the current state."""

    code = "invalid_transition"

    def __init__(self, current: str, target: str, noun: str) -> None:
        super().__init__(f"Cannot move a {noun} that is {current!r} to {target!r}.")
        self.current = current
        self.target = target


@dataclass(frozen=True)
class Machine(Generic[S]):
    noun: str
    states: type[S]
    moves: Mapping[S, frozenset[S]]

    def can_move(self, current: S | str, target: S | str) -> bool:
        return self.states(target) in self.moves[self.states(current)]

    def move(self, current: S | str, target: S | str) -> S:
        """`target` as a state, if the move is allowed; else InvalidTransition."""
        if not self.can_move(current, target):
            raise InvalidTransition(str(current), str(target), self.noun)
        return self.states(target)

    def problems(self) -> list[str]:
        """What is wrong with the table: states without a row, moves to unknown states."""
        found = [f"{self.noun}: no moves listed for {str(state)!r}" for state in self.states
                 if state not in self.moves]
        for state, targets in self.moves.items():
            found += [f"{self.noun}: {str(state)!r} moves to unknown {str(target)!r}"
                      for target in targets if target not in set(self.states)]
        return found
