"""What a story may be: size, type, length, codecs, frame size. Member-readable refusals."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from media.probe import MediaInfo
from service.i18n import ENGLISH, N_
from service.settings import Settings

CONTAINER_FAMILIES = {"mp4": "mov", "mov": "mov", "webm": "matroska", "mkv": "matroska"}
TYPE_HINT = N_("Send an MP4, MOV or WebM video.")
_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}


@dataclass(frozen=True)
class Refusal:
    """Why a story can't be taken: English msgids and the values they name, told to the
    member in their language."""

    code: str
    message: str
    hint: str
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return ENGLISH.text(self.message, self.args)


@dataclass(frozen=True)
class StoryLimits:
    max_bytes: int
    max_seconds: int
    containers: tuple[str, ...]
    video_codecs: tuple[str, ...]
    audio_codecs: tuple[str, ...]
    max_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings, prompt_seconds: int | None = None) -> StoryLimits:
        seconds = settings.upload_max_seconds
        if prompt_seconds:
            seconds = min(seconds, prompt_seconds)
        return cls(settings.upload_max_bytes, seconds, settings.upload_containers,
                   settings.upload_video_codecs, settings.upload_audio_codecs,
                   settings.max_pixels)

    @property
    def families(self) -> set[str]:
        return {CONTAINER_FAMILIES[c] for c in self.containers}


@dataclass(frozen=True)
class Keep:
    """The part of a source video the member chose to keep, in seconds from its start (the
    recorder's trim). Ingest cuts it; the limits apply to its length."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)
                and 0 <= self.start < self.end):
            raise ValueError("a kept part starts at 0 s or later and ends after it starts")

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @classmethod
    def from_ms(cls, start_ms: int | None, end_ms: int | None) -> Keep | None:
        if start_ms is None or end_ms is None:
            return None
        return cls(start_ms / 1000, end_ms / 1000)


def read_keep(start: object, end: object, limits: StoryLimits) -> Keep | Refusal | None:
    """The member's trim from upload metadata (seconds as text), a refusal, or None when the
    whole file is sent."""
    if start in (None, "") and end in (None, ""):
        return None
    try:
        keep = Keep(float(str(start or 0)), float(str(end)))
    except ValueError:
        return Refusal("invalid_trim", "The part to keep must start before it ends.",
                       "Move the handles and try again.")
    if keep.seconds > limits.max_seconds + 0.5:
        return Refusal("invalid_trim",
                       "The part to keep is %(length_seconds)s long; stories can be at most "
                       "%(max_seconds)s.", "Move the handles closer together.",
                       {"length_seconds": round(keep.seconds), "max_seconds": limits.max_seconds})
    return keep


def clean_filename(raw: str) -> str:
    """A display name only: the last path segment, printable, at most 120 characters."""
    name = re.split(r"[\\/]", raw)[-1]
    name = "".join(c for c in name if c.isprintable()).strip().lstrip(".")
    return name[-120:] or "video"


def sniff(head: bytes) -> str | None:
    """The container family from a file's first bytes, or None if it is not one we take."""
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if len(head) >= 8 and head[4:8] in _BMFF_BOXES:
        return "mov"
    return None


def refuse_size(size: int, limits: StoryLimits) -> Refusal | None:
    if size <= 0:
        return Refusal("empty_file", "This file is empty.", "Pick the video file again.")
    if size > limits.max_bytes:
        return Refusal("file_too_large",
                       "This file is %(size_bytes)s; stories can be at most %(max_bytes)s.",
                       "Trim the video or record it at a lower quality, then try again.",
                       {"size_bytes": size, "max_bytes": limits.max_bytes})
    return None


def refuse_type(head: bytes, limits: StoryLimits) -> Refusal | None:
    family = sniff(head)
    if family is None or family not in limits.families:
        return Refusal("unsupported_type", "This file type isn't supported.", TYPE_HINT)
    return None


def refuse_media(info: MediaInfo, limits: StoryLimits) -> Refusal | None:
    """Checks on the probed facts, in the order a member can act on them."""
    family = "matroska" if "matroska" in info.container else "mov"
    if family not in limits.families:
        return Refusal("unsupported_type", "This file type isn't supported.", TYPE_HINT)
    if info.video is None or info.video.width <= 0 or info.video.height <= 0:
        return Refusal("no_video", "We couldn't find a video track in this file.",
                       "Record or export it again as a video.")
    if info.video.codec not in limits.video_codecs:
        return Refusal("unsupported_codec",
                       "This video uses the %(codec)s codec, which we can't take.",
                       "Export it as H.264 (MP4) and try again.", {"codec": info.video.codec})
    if info.audio is not None and info.audio.codec not in limits.audio_codecs:
        return Refusal("unsupported_codec",
                       "This video's sound uses %(codec)s, which we can't take.",
                       "Export it with AAC sound (MP4) and try again.", {"codec": info.audio.codec})
    if info.video.width * info.video.height > limits.max_pixels:
        return Refusal("frame_too_large",
                       "This video is %(frame)s pixels, larger than we accept.",
                       "Export it at 4K or less and try again.",
                       {"frame": f"{info.video.width}x{info.video.height}"})
    if info.duration <= 0:
        return Refusal("no_duration", "We couldn't tell how long this video is.",
                       "Record or export it again.")
    if info.duration > limits.max_seconds + 0.5:
        return Refusal("clip_too_long",
                       "This video is %(length_seconds)s long; stories can be at most "
                       "%(max_seconds)s.", "Trim it and try again.",
                       {"length_seconds": round(info.duration), "max_seconds": limits.max_seconds})
    return None
