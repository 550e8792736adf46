"""The publisher's REMB follows its own receive path: up on a clean link, down under loss,
held in between, within bounds."""

from __future__ import annotations

from service.live import bitrate


def feed(path: bitrate.ReceivePath, start: int, count: int, lose_every: int = 0,
         size: int = 1000) -> int:
    for i in range(count):
        if lose_every and i % lose_every == 0:
            continue
        path.packet((start + i) & 0xFFFF, size)
    return start + count


def test_a_clean_link_raises_the_estimate_to_the_ceiling() -> None:
    path = bitrate.ReceivePath(now=0.0)
    seq, now, seen = 65000, 0.0, []  # crosses the 16-bit wrap on the way
    for _ in range(30):
        seq = feed(path, seq, 250)  # 2 Mbit/s arriving, nothing lost
        now += 1.0
        seen.append(path.tick(now))
    assert seen[0] >= 3_000_000  # 1.5 times what arrived, at once
    assert seen == sorted(seen) and seen[-1] == bitrate.MAX_BPS
    assert path.loss == 0.0


def test_loss_lowers_it_below_what_arrives_and_moderate_loss_holds() -> None:
    path = bitrate.ReceivePath(now=0.0)
    seq = feed(path, 0, 250, lose_every=5)  # 20% lost, 1.6 Mbit/s arrived
    lowered = path.tick(1.0)
    assert abs(path.loss - 0.2) < 0.01
    assert lowered < 1_600_000
    feed(path, seq, 100, lose_every=20)  # 5% lost: hold
    assert path.tick(2.0) == lowered


def test_nothing_arriving_changes_nothing_and_bounds_hold() -> None:
    path = bitrate.ReceivePath(now=0.0)
    assert path.tick(1.0) == bitrate.START_BPS
    for i in range(10):
        feed(path, i * 100, 100, lose_every=2, size=10)
        path.tick(2.0 + i)
    assert path.bps == bitrate.MIN_BPS
