"""The session's recording: the publisher's forwarded packets remuxed into WebM as they pass,
never decoded or encoded. It starts at the first video keyframe; audio and video are placed
on one timeline by when their first packets arrived."""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from service.live.forward import AUDIO_CLOCK, VIDEO_CLOCK, Fanout

log = logging.getLogger("kumpul.live")
STREAMS = {"VP8": "libvpx", "opus": "libopus"}


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 9.1)."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return (int.from_bytes(data[6:8], "little") & 0x3FFF,
            int.from_bytes(data[8:10], "little") & 0x3FFF)


class Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.started: float | None = None  # monotonic time of the recording's first frame
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
            size = vp8_size(data) if kind == "video" and key else None
            if size is None:
                return  # wait for the first video keyframe
            self._open(size)
            self.started = now
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

    def _open(self, size: tuple[int, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w", format="webm")
        video = self._container.add_stream(STREAMS["VP8"], rate=30)
        video.width, video.height = size
        video.time_base = VIDEO_CLOCK
        audio = self._container.add_stream(STREAMS["opus"], rate=48000)
        audio.time_base = Fraction(1, 48000)
        self._streams = {"video": video, "audio": audio}

    def elapsed_ms(self) -> int:
        """Where on the recording's timeline `now` falls (chat and reactions are kept so)."""
        return 0 if self.started is None else int((time.monotonic() - self.started) * 1000)

    def close(self) -> Path | None:
        """Finish the file; None when nothing was recorded."""
        if self._container is None:
            return None
        self._container.close()
        self._container = None
        return self.path if self.packets else None
