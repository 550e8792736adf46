"""A reel's canvas and the mezzanine format every piece of a reel is rendered into.

Pieces share one encoding (same size, codec parameters, GOP and timescale), so that a reel
is a stream-copy join of pieces, re-encoding only transition windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FPS = 30
GOP = 15          # frames: a closed GOP of 0.5 s, the granularity of stream-copy cuts
TIMESCALE = FPS * 512
SAMPLE_RATE = 48000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS


@dataclass(frozen=True)
class Canvas:
    name: str
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or not (64 <= self.width <= 2160
                                                     and 64 <= self.height <= 2160):
            raise ValueError(f"a canvas is even-sized within 64-2160, not "
                             f"{self.width}x{self.height}")

    @property
    def aspect(self) -> float:
        return self.width / self.height


CANVASES: dict[str, Canvas] = {c.name: c for c in (
    Canvas("9:16", 720, 1280), Canvas("1:1", 1080, 1080), Canvas("16:9", 1280, 720))}


def canvas(name: str) -> Canvas:
    try:
        return CANVASES[name]
    except KeyError:
        raise ValueError(f"unknown canvas {name!r}; choose one of "
                         f"{', '.join(CANVASES)}") from None


@dataclass(frozen=True)
class Mezzanine:
    """x264 settings shared by pieces and transition windows. Changing any of them changes
    every cache key (see `tag`), so old pieces are never mixed with new ones."""

    # The pieces are the published reel's video, rendered once per clip and cached, so they
    # get x264's default (medium) preset rather than ingest's veryfast.
    crf: int = 20
    preset: str = "medium"
    threads: int = 2  # fixed: x264's output depends on its thread count, renders must repeat

    @property
    def tag(self) -> str:
        return f"h264-crf{self.crf}-{self.preset}-t{self.threads}-g{GOP}-r{FPS}"

    def video_args(self) -> dict[str, Any]:
        return {"vcodec": "libx264", "preset": self.preset, "crf": self.crf,
                "profile:v": "high", "level:v": "4.0", "pix_fmt": "yuv420p",
                "g": GOP, "keyint_min": GOP, "sc_threshold": 0, "bf": 0, "threads": self.threads,
                "x264-params": "open-gop=0:scenecut=0:repeat-headers=1", "flags": "+cgop",
                "video_track_timescale": TIMESCALE, "fps_mode": "cfr"}


MEZZANINE = Mezzanine()
