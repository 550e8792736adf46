"""How much work a clip is, decided from its probe before any encoding, and the plan that
fits it: normal, fast (frames dropped at the decoder, a faster preset, at low CPU priority)
or fastest (the cheapest that still makes a normal rendition). Pure: numbers in, a plan out.

The cost is what the decoder and scaler must touch: width x height x frame rate x seconds,
in megapixel-frames. A 1080x1920 30 fps minute is 3,732; a 4K 60 fps phone video of 3
minutes is 89,579.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from media.normalise import RenditionSpec
from media.probe import MediaInfo

PLANS = ("normal", "fast", "fastest")


@dataclass(frozen=True)
class Plan:
    name: str          # one of PLANS
    cost: float        # megapixel-frames of the source (up to the length kept)
    source_fps: float

    def __post_init__(self) -> None:
        if self.name not in PLANS:
            raise ValueError(f"no plan named {self.name!r}")

    @property
    def heavy(self) -> bool:
        """Above the budget: prepared on the heavy lane, never ahead of short clips."""
        return self.name != "normal"

    def cheaper(self) -> Plan | None:
        """The one plan to try after a timeout (the fastest), or None when this is it: a
        clip is retried once, never twice."""
        return None if self.name == PLANS[-1] else dataclasses.replace(self, name=PLANS[-1])

    def spec(self, base: RenditionSpec) -> RenditionSpec:
        """The rendition spec of this plan: the same output format, cheaper ways to it."""
        if self.name == "normal":
            return base
        # Dropping non-reference frames at the decoder only pays (and only keeps motion
        # smooth) when the source has at least 1.5x the frames the rendition keeps.
        drop = self.source_fps >= base.fps * 1.5
        return dataclasses.replace(
            base, preset="superfast" if self.name == "fast" else "ultrafast",
            scaler="fast_bilinear", drop_frames=drop, fast_decode=True,
            crf=base.crf + (1 if self.name == "fast" else 2), nice=10)

    def timeout(self, base: float, seconds: float) -> float:
        """The wall-clock limit of one encode: the base limit plus time in proportion to the
        clip's length (a heavy plan costs about the same per second as a normal one)."""
        return base + 1.5 * seconds


def cost(info: MediaInfo, max_seconds: float | None = None) -> float:
    if info.video is None:
        return 0.0
    seconds = min(info.duration, max_seconds) if max_seconds else info.duration
    fps = info.video.fps or 30.0
    return info.video.width * info.video.height * fps * seconds / 1e6


def choose(info: MediaInfo, *, budget: float, ceiling: float,
           max_seconds: float | None = None) -> Plan | None:
    """The plan for a probed clip, or None when it costs more than the ceiling."""
    spent = cost(info, max_seconds)
    fps = (info.video.fps if info.video else None) or 30.0
    if spent > ceiling:
        return None
    return Plan("normal" if spent <= budget else "fast", spent, fps)
