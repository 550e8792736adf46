"""The README stays honest: every setting in its table, the two commands present."""

from __future__ import annotations

import re
from pathlib import Path

from service.settings import SPECS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    rows = set(re.findall(r"^\| `(KUMPUL_[A-Z0-9_]+)` \|", README, re.M))
    declared = {spec.env for spec in SPECS}
    assert rows == declared, {"missing": declared - rows, "unknown": rows - declared}


def test_table_defaults_match_the_code() -> None:
    for spec in SPECS:
        row = re.search(rf"^\| `{spec.env}` \| ([^|]*) \|", README, re.M)
        assert row, spec.env
        shown = row.group(1).strip().strip("`")
        assert shown == (spec.default or "(empty)"), spec.env


def test_the_two_commands_are_documented_and_exist() -> None:
    for script in ("scripts/serve", "scripts/test"):
        assert f"./{script}" in README
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert "bash scripts/test" in (ROOT / ".ci/run").read_text() or \
        "./scripts/test" in (ROOT / ".ci/run").read_text()
