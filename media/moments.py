"""The best moments of a live session, from its signals: reactions and chat per second,
momentary loudness of the recording, and scene changes. Pure: numbers in, moments out.

1. Each second gets an activity score: reactions, messages, and how far its loudness rises
   above the session's usual level.
2. Seconds that stand out (above a share of the busiest second) form runs; runs closer than
   a short gap merge (overlapping windows merge).
3. The strongest runs become moments: padded, grown to the shortest allowed length around
   their peak, cut to the longest, and snapped to a nearby scene change when one is close.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Signals:
    duration: float                          # seconds of recording
    reactions: Sequence[float] = ()          # when each reaction came, seconds
    messages: Sequence[float] = ()           # when each chat message came, seconds
    loudness: Sequence[tuple[float, float]] = ()  # (seconds, momentary LUFS), e.g. every 0.1 s
    scenes: Sequence[float] = ()             # scene changes, seconds


@dataclass(frozen=True)
class Rules:
    top: int = 5
    min_seconds: float = 8.0
    max_seconds: float = 30.0
    pad: float = 1.0          # seconds added before and after the active span
    gap: float = 2.0          # quieter seconds allowed inside one moment
    snap: float = 1.5         # how far an edge may move to meet a scene change
    loud_db: float = 6.0      # loudness this far above usual counts as activity

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError("moments need 0 < min_seconds <= max_seconds")
        if self.top < 1:
            raise ValueError("propose at least one moment")


@dataclass(frozen=True)
class Moment:
    start: float
    end: float
    score: float
    why: str
    # the numbers behind `why`, so it can be told in any language: reactions, messages,
    # seconds, loud_db (0 when not loud)
    facts: dict[str, float] = field(default_factory=dict, compare=False, hash=False)

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _per_second(times: Sequence[float], bins: int) -> list[int]:
    counts = [0] * bins
    for t in times:
        if 0 <= t < bins:
            counts[int(t)] += 1
    return counts


def _loud(loudness: Sequence[tuple[float, float]], bins: int,
          rules: Rules) -> tuple[list[float], float]:
    """Per second: dB above the usual (median) momentary loudness, over `loud_db`."""
    peaks = [float("-inf")] * bins
    for t, lufs in loudness:
        if 0 <= t < bins:
            peaks[int(t)] = max(peaks[int(t)], lufs)
    heard = [p for p in peaks if p > -70]
    usual = statistics.median(heard) if heard else -70.0
    return [max(0.0, p - usual - rules.loud_db) if p > -70 else 0.0 for p in peaks], usual


def find(signals: Signals, rules: Rules = Rules()) -> list[Moment]:
    """Up to `rules.top` moments, best first, none overlapping."""
    bins = max(int(signals.duration + 0.999), 1)
    reactions = _per_second(signals.reactions, bins)
    messages = _per_second(signals.messages, bins)
    loud, _ = _loud(signals.loudness, bins, rules)
    activity = [reactions[i] + 0.5 * messages[i] + loud[i] / 3 for i in range(bins)]
    busiest = max(activity)
    if busiest <= 0:
        return []
    active = [a >= 0.25 * busiest for a in activity]

    runs: list[tuple[int, int]] = []
    for i, on in enumerate(active):
        if not on:
            continue
        if runs and i - runs[-1][1] <= rules.gap + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    scored = sorted(runs, key=lambda r: -sum(activity[r[0]:r[1] + 1]))

    moments: list[Moment] = []
    for first, last in scored:
        start, end = _shape(first, last + 1, activity, signals, rules)
        if any(start < m.end and m.start < end for m in moments):
            continue  # overlaps a stronger moment
        moments.append(Moment(round(start, 3), round(end, 3),
                              round(sum(activity[first:last + 1]), 3),
                              _why(first, last + 1, reactions, messages, loud,
                                   rules.loud_db),
                              _facts(first, last + 1, reactions, messages, loud,
                                     rules.loud_db)))
        if len(moments) == rules.top:
            break
    return moments


def _shape(first: int, stop: int, activity: list[float], signals: Signals,
           rules: Rules) -> tuple[float, float]:
    start, end = first - rules.pad, stop + rules.pad
    if end - start < rules.min_seconds:  # grow around the middle of the run
        middle = (start + end) / 2
        start, end = middle - rules.min_seconds / 2, middle + rules.min_seconds / 2
    if end - start > rules.max_seconds:  # keep the busiest stretch
        peak = max(range(first, stop), key=lambda i: activity[i]) + 0.5
        start = max(start, peak - rules.max_seconds / 2)
        end = start + rules.max_seconds
    start, end = _snap(start, end, signals.scenes, rules)
    if start < 0:
        start, end = 0.0, min(end - start, signals.duration)
    if end > signals.duration:
        start, end = max(0.0, start - (end - signals.duration)), signals.duration
    return start, end


def _snap(start: float, end: float, scenes: Sequence[float],
          rules: Rules) -> tuple[float, float]:
    """Move each edge to the nearest scene change within `snap`, if the length still fits."""
    def nearest(t: float) -> float | None:
        near = [s for s in scenes if abs(s - t) <= rules.snap]
        return min(near, key=lambda s: abs(s - t)) if near else None

    for edge in ("start", "end"):
        moved = nearest(start if edge == "start" else end)
        if moved is None:
            continue
        new = (moved, end) if edge == "start" else (start, moved)
        if rules.min_seconds <= new[1] - new[0] <= rules.max_seconds:
            start, end = new
    return start, end


def _facts(first: int, stop: int, reactions: list[int], messages: list[int],
           loud: list[float], loud_db: float) -> dict[str, float]:
    top = max(loud[first:stop], default=0.0)
    return {"reactions": sum(reactions[first:stop]), "messages": sum(messages[first:stop]),
            "seconds": stop - first, "loud_db": round(top + loud_db) if top > 0 else 0}


def _why(first: int, stop: int, reactions: list[int], messages: list[int],
         loud: list[float], loud_db: float) -> str:
    seconds = stop - first
    parts = []
    r, m = sum(reactions[first:stop]), sum(messages[first:stop])
    counted = [f"{n} {noun}{'s' * (n != 1)}" for n, noun in ((r, "reaction"), (m, "message"))
               if n]
    if counted:
        parts.append(f"{' and '.join(counted)} in {seconds} s")
    top = max(loud[first:stop], default=0.0)
    if top > 0:
        parts.append(f"a loud moment ({top + loud_db:.0f} dB above the usual)")
    return ", ".join(parts) or "activity"
