"""The processing budget: a plan chosen from the probe before encoding, and heavy plans that
still make a normal rendition."""

from __future__ import annotations

from pathlib import Path

import pytest

from media import budget
from media.normalise import RenditionSpec, normalise
from media.probe import probe
from tests import media_files


def test_the_plan_follows_the_cost(tmp_path: Path) -> None:
    """Within the budget the normal plan; above it a fast one (frames dropped at the decoder
    for a 60 fps source); beyond the ceiling none; after a timeout the fastest plan, once."""
    info = probe(media_files.phone_60fps_mp4(tmp_path / "p.mp4"), timeout=30)
    spent = budget.cost(info)
    assert spent == pytest.approx(1280 * 720 * 60 * 2 / 1e6, rel=0.02)
    normal = budget.choose(info, budget=spent + 1, ceiling=spent * 2)
    assert normal is not None and normal.name == "normal"
    assert normal.cheaper() is not None and normal.cheaper().name == "fastest"  # type: ignore[union-attr]
    fast = budget.choose(info, budget=spent / 2, ceiling=spent * 2)
    assert fast is not None and fast.heavy and fast.name == "fast"
    assert budget.choose(info, budget=10, ceiling=spent / 2) is None
    spec = fast.spec(RenditionSpec())
    assert spec.drop_frames and spec.fast_decode and spec.preset == "superfast" and spec.nice
    cheapest = fast.cheaper()
    assert cheapest is not None and cheapest.spec(RenditionSpec()).preset == "ultrafast"
    assert cheapest.cheaper() is None
    assert budget.cost(info, max_seconds=1) == pytest.approx(spent / 2, rel=0.02)
    assert fast.timeout(120, 180) > 120  # scaled to the length


def test_a_heavy_plan_still_makes_a_normal_rendition(tmp_path: Path) -> None:
    """A 60 fps source on the fastest plan becomes the usual 30 fps CFR rendition of the
    same length, size capped, with sound."""
    src = media_files.phone_60fps_mp4(tmp_path / "p.mp4", seconds=3)
    info = probe(src, timeout=30)
    plan = budget.choose(info, budget=1, ceiling=10**6)
    assert plan is not None and plan.cheaper() is not None
    spec = plan.cheaper().spec(RenditionSpec(long_side=640))  # type: ignore[union-attr]
    out = tmp_path / "web.mp4"
    normalise(src, out, info, spec, timeout=60)
    made = probe(out, timeout=30)
    assert made.video is not None and made.audio is not None
    assert (made.video.width, made.video.height) == (640, 360)
    assert made.video.fps == pytest.approx(30, abs=0.01) and not made.video.variable_fps
    assert made.duration == pytest.approx(3.0, abs=0.1)
