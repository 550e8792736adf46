"""The moment finder on synthetic sessions: busy stretches and loud bursts are proposed
where they happened, with reasons, merged, sized and snapped by the rules."""

from __future__ import annotations

import pytest

from media.moments import Rules, Signals, find


def quiet(duration: float, level: float = -30.0) -> list[tuple[float, float]]:
    return [(i / 10, level) for i in range(int(duration * 10))]


def test_a_reaction_cluster_and_a_loud_burst_are_both_proposed() -> None:
    loudness = quiet(600)
    loudness = [(t, -12.0 if 300 <= t < 302 else lufs) for t, lufs in loudness]
    signals = Signals(duration=600, reactions=[120 + i * 0.25 for i in range(38)],
                      messages=[121 + i for i in range(8)], loudness=loudness)
    found = find(signals)
    assert len(found) == 2
    crowd, burst = found
    assert crowd.start == pytest.approx(119, abs=1) and crowd.end == pytest.approx(131, abs=1)
    assert crowd.why.startswith("38 reactions and 8 messages in ")
    assert burst.start <= 300 and burst.end >= 302 and burst.seconds == pytest.approx(8)
    assert "loud moment (18 dB above the usual)" in burst.why
    assert crowd.score > burst.score


def test_nearby_activity_merges_into_one_moment() -> None:
    signals = Signals(duration=200, reactions=[50, 50.5, 51, 53.5, 54, 54.5])
    (moment,) = find(signals)  # one moment, not two: the 1 s lull doesn't split it
    assert (moment.start, moment.end) == (48.5, 56.5)  # 50-55 padded, grown to 8 s


def test_lengths_are_clamped() -> None:
    long = Signals(duration=300, reactions=[100 + i * 0.5 for i in range(120)])
    (moment,) = find(long, Rules(max_seconds=30))
    assert moment.seconds == pytest.approx(30)
    short = Signals(duration=300, reactions=[10])
    (moment,) = find(short, Rules(min_seconds=8))
    assert moment.seconds == pytest.approx(8)
    edge = Signals(duration=20, reactions=[0.2])
    (moment,) = find(edge)
    assert moment.start == 0 and moment.seconds == pytest.approx(8)


def test_edges_snap_to_scene_changes() -> None:
    signals = Signals(duration=200, reactions=[100 + i * 0.5 for i in range(20)],
                      scenes=[98.2, 111.3])
    (moment,) = find(signals)
    assert (moment.start, moment.end) == (98.2, 111.3)


def test_top_n_best_first_and_nothing_when_silent() -> None:
    reactions = [t for start, n in ((20, 3), (80, 9), (150, 6)) for t in
                 [start + i * 0.3 for i in range(n)]]
    found = find(Signals(duration=200, reactions=reactions), Rules(top=2))
    assert [m.start for m in found] == [77.5, 147.0]  # the two busiest, busiest first
    assert find(Signals(duration=100)) == []
    assert find(Signals(duration=100, loudness=quiet(100))) == []


def test_rerunning_gives_the_same_moments() -> None:
    signals = Signals(duration=300, reactions=[30, 31, 32, 200, 201], messages=[31, 200])
    assert find(signals) == find(signals)


def test_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="min_seconds"):
        Rules(min_seconds=40, max_seconds=30)
    with pytest.raises(ValueError, match="at least one"):
        Rules(top=0)
