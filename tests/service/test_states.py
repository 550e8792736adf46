"""The state machines: every table complete, every move checked in one place."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import service.domain
from service.domain import clip_state, recording_state
from service.domain.clip_state import ClipState
from service.domain.states import InvalidTransition, Machine

ROOT = Path(__file__).resolve().parents[2]
STATE_FIELDS = {"state", "recording_state", "moments_state"}


def machines() -> list[Machine[Any]]:
    found = []
    for module in pkgutil.iter_modules(service.domain.__path__):
        loaded = importlib.import_module(f"service.domain.{module.name}")
        found += [v for v in vars(loaded).values() if isinstance(v, Machine)]
    return found


def test_every_table_is_complete() -> None:
    """Each state lists its moves, and every move lands on a state of the same machine."""
    found = machines()
    assert {m.noun for m in found} == {"clip", "reel", "session", "moment", "recording",
                                       "moment finder", "delivery"}
    for machine in found:
        assert machine.problems() == [], machine.noun


def test_a_gap_in_a_table_is_reported() -> None:
    """The completeness check itself finds a missing row and a move to a foreign state."""
    moves: dict[ClipState, frozenset[ClipState]] = {
        ClipState.uploading: frozenset({"elsewhere"})}  # type: ignore[arg-type]
    broken = Machine("clip", ClipState, moves)
    problems = broken.problems()
    assert "clip: no moves listed for 'uploaded'" in problems
    assert "clip: 'uploading' moves to unknown 'elsewhere'" in problems


def test_an_illegal_move_names_the_current_state() -> None:
    with pytest.raises(InvalidTransition, match="Cannot move a clip that is 'processing' to "
                                                "'approved'"):
        clip_state.MACHINE.move("processing", "approved")
    with pytest.raises(InvalidTransition, match="recording that is 'ready'"):
        recording_state.MACHINE.move("ready", "processing")
    assert clip_state.MACHINE.move("approved", "withdrawn") == ClipState.withdrawn


def test_states_are_written_only_by_their_transition() -> None:
    """No code outside the `*_state` modules assigns a state field (`x.state = ...`)."""
    offenders = []
    for path in [*ROOT.joinpath("service").rglob("*.py"), *ROOT.joinpath("workers").rglob("*.py")]:
        if path.name.endswith("_state.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for item in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(item, ast.Attribute) and item.attr in STATE_FIELDS:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
