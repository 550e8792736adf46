"""Facts about a media file: container, streams, duration (measured when missing), HDR, rotation."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from media.run import FORMATS, INPUT_GUARD, PROTOCOLS, MediaError, local_input, run

HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})


@dataclass(frozen=True)
class VideoFacts:
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str | None
    fps: float | None
    variable_fps: bool
    rotation: int
    color_transfer: str | None

    @property
    def hdr(self) -> bool:
        return self.color_transfer in HDR_TRANSFERS

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown, after rotation."""
        if self.rotation % 180:
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True)
class AudioFacts:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration: float
    duration_measured: bool
    size: int
    video: VideoFacts | None
    audio: AudioFacts | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.video is not None:
            out["video"]["hdr"] = self.video.hdr
            out["video"]["display_size"] = list(self.video.display_size)
        return out


def _rate(raw: str | None) -> float | None:
    try:
        value = Fraction(raw or "0")
    except (ValueError, ZeroDivisionError):
        return None
    return float(value) if value > 0 else None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return round(float(side["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return int(tag) % 360 if tag and str(tag).lstrip("-").isdigit() else 0


def _video(stream: dict[str, Any]) -> VideoFacts:
    avg, real = _rate(stream.get("avg_frame_rate")), _rate(stream.get("r_frame_rate"))
    variable = bool(avg and real and abs(avg - real) / real > 0.01)
    return VideoFacts(
        codec=str(stream.get("codec_name", "unknown")), profile=stream.get("profile"),
        width=int(stream.get("width") or 0), height=int(stream.get("height") or 0),
        pix_fmt=stream.get("pix_fmt"), fps=avg or real, variable_fps=variable,
        rotation=_rotation(stream), color_transfer=stream.get("color_transfer"),
    )


def _audio(stream: dict[str, Any]) -> AudioFacts:
    return AudioFacts(codec=str(stream.get("codec_name", "unknown")),
                      sample_rate=int(stream.get("sample_rate") or 0),
                      channels=int(stream.get("channels") or 0))


def measure_duration(path: Path, *, timeout: float) -> float:
    """Read every packet of the first video (or audio) stream; the last one ends the clip."""
    end = 0.0

    def take(line: str) -> None:
        nonlocal end
        pts, _, dur = line.partition(",")
        with contextlib.suppress(ValueError):
            end = max(end, float(pts) + (float(dur) if dur and dur != "N/A" else 0.0))

    for selector in ("v:0", "a:0"):
        run(["ffprobe", "-v", "error", *INPUT_GUARD, "-select_streams", selector,
             "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0",
             local_input(path)], timeout=timeout, on_line=take, keep_stdout=False)
        if end > 0:
            break
    return end


def probe(path: Path, *, timeout: float, formats: str = FORMATS) -> MediaInfo:
    """Probe a local file under the untrusted-media rules (`formats`: the demuxers allowed;
    videos by default)."""
    guard = ("-protocol_whitelist", PROTOCOLS, "-format_whitelist", formats)
    result = run(["ffprobe", "-v", "error", *guard, "-show_format", "-show_streams",
                  "-of", "json", local_input(path)], timeout=timeout)
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise MediaError("ffprobe gave no readable description", result.stderr) from exc
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _rate(fmt.get("duration")) or 0.0
    measured = False
    if duration <= 0:
        duration = measure_duration(path, timeout=timeout)
        measured = True
    return MediaInfo(
        container=str(fmt.get("format_name", "unknown")), duration=duration,
        duration_measured=measured, size=path.stat().st_size,
        video=_video(video) if video else None, audio=_audio(audio) if audio else None,
    )
