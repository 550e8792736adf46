"""The session's recording: the publisher's forwarded packets remuxed as they pass, never
re-encoded: VP8 into WebM, H.264 (what OBS sends) into Matroska, Opus in both. It starts at
the first video keyframe; audio and video are placed on one timeline by when their first
packets arrived."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from service.live.forward import AUDIO_CLOCK, VIDEO_CLOCK, Fanout

log = logging.getLogger("kumpul.live")
STREAMS = {"VP8": "libvpx", "H264": "h264", "opus": "libopus"}
CONTAINERS = {"VP8": ("webm", ".webm"), "H264": ("matroska", ".mkv")}
CONTENT_TYPES = {".webm": "video/webm", ".mkv": "video/x-matroska"}
HOST = "recording"  # the host's recording; each turn on stage is "guest-{n}"


@dataclass(frozen=True)
class Recording:
    """A finished file: the host's (`HOST`) or one guest's turn on stage."""

    name: str
    path: Path

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.path.suffix]


def h264_setup(data: bytes) -> tuple[tuple[int, int], bytes] | None:
    """Frame size and SPS/PPS (the Matroska header's codec data) of an H.264 keyframe. The
    size is read by decoding this one frame; nothing is encoded."""
    units = [u for u in data.split(b"\x00\x00\x01") if u]
    params = b"".join(b"\x00\x00\x00\x01" + u.rstrip(b"\x00") for u in units
                      if u[0] & 0x1F in (7, 8))
    if not params:
        return None
    decoder = av.CodecContext.create("h264", "r")
    try:
        frames = list(decoder.decode(av.Packet(data))) + list(decoder.decode(None))
    except av.FFmpegError:
        return None
    if not frames:
        return None
    return (frames[0].width, frames[0].height), params


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 9.1)."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return (int.from_bytes(data[6:8], "little") & 0x3FFF,
            int.from_bytes(data[8:10], "little") & 0x3FFF)


class Recorder:
    def __init__(self, stem: Path, name: str = HOST) -> None:
        self.stem = stem  # the file's suffix comes with the codec
        self.name = name
        self.path = stem.with_suffix(".webm")
        self.started: float | None = None  # monotonic time of the recording's first frame
        self.started_wall: float | None = None  # ... and on the wall clock (other nodes')
        self.on_start: Callable[[], None] | None = None
        self.packets = 0
        self._container: Any = None
        self._streams: dict[str, Any] = {}
        self._origin: dict[str, tuple[int, float]] = {}  # kind -> (first RTP ts, arrival)
        self.unsupported: str | None = None

    def attach(self, fanouts: dict[str, Fanout]) -> None:
        """Record these tracks (a publisher that reconnects continues the same file, on the
        wall-clock timeline)."""
        self._origin = {}
        for kind, fanout in fanouts.items():
            fanout.on_frame = self._writer(kind)

    def _writer(self, kind: str) -> Any:
        def write(codec: RTCRtpCodecParameters, data: bytes, timestamp: int, key: bool) -> None:
            try:
                self.write(kind, codec, data, timestamp, key)
            except Exception:  # the recording must never take the room down
                log.exception("recording failed; the stream goes on")
                self.unsupported = self.unsupported or "error"
        return write

    def write(self, kind: str, codec: RTCRtpCodecParameters, data: bytes, timestamp: int,
              key: bool) -> None:
        if self.unsupported:
            return
        if codec.name not in STREAMS:
            self.unsupported = codec.name  # e.g. H.264: not recorded yet (see README)
            return
        now = time.monotonic()
        if self._container is None:
            if kind != "video" or not key or not self._open(codec.name, data):
                return  # wait for the first video keyframe
            self.started, self.started_wall = now, time.time()
            if self.on_start is not None:
                self.on_start()
        if kind not in self._origin:
            self._origin[kind] = (timestamp, now)
        first_ts, arrived = self._origin[kind]
        clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
        assert self.started is not None
        offset = round((arrived - self.started) / clock)
        packet = av.Packet(data)
        packet.pts = packet.dts = (timestamp - first_ts) % (1 << 32) + offset
        packet.time_base = clock
        packet.stream = self._streams[kind]
        if kind == "video":
            packet.is_keyframe = key
        self._container.mux(packet)
        self.packets += 1

    def _open(self, codec: str, keyframe: bytes) -> bool:
        extradata = None
        if codec == "VP8":
            size = vp8_size(keyframe)
        else:
            found = h264_setup(keyframe)
            size, extradata = found if found else (None, None)
        if size is None:
            return False
        container, suffix = CONTAINERS[codec]
        self.path = self.stem.with_suffix(suffix)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w", format=container)
        video = self._container.add_stream(STREAMS[codec], rate=30)
        video.width, video.height = size
        video.time_base = VIDEO_CLOCK
        if extradata:
            video.codec_context.extradata = extradata
        audio = self._container.add_stream(STREAMS["opus"], rate=48000)
        audio.time_base = Fraction(1, 48000)
        self._streams = {"video": video, "audio": audio}
        return True

    def elapsed_ms(self) -> int:
        """Where on the recording's timeline `now` falls (chat and reactions are kept so)."""
        return 0 if self.started is None else int((time.monotonic() - self.started) * 1000)

    def close(self) -> Recording | None:
        """Finish the file; None when nothing was recorded."""
        if self._container is None:
            return None
        self._container.close()
        self._container = None
        return Recording(self.name, self.path) if self.packets else None
