"""One encoded frame of a fan-out, shared by every viewer of it.

A frame is packetized once (`payloads`, RTP payloads as aiortc's own payloaders cut them)
and the same bytes go to every viewer of the layer; each viewer's writer (`writer.py`) adds
only what differs per viewer: the RTP header, the VP8 picture id where its numbering
differs, and SRTP. The classic path (aiortc's sender packetizing per viewer) reads the
frame as one `av.Packet`, made once and shared too.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import av
from aiortc.codecs import h264, vpx

VIDEO_CLOCK = Fraction(1, 90000)
AUDIO_CLOCK = Fraction(1, 48000)
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
NO_PICTURE_ID = -1


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (what RTCP sender reports carry)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 4294967296)


class Frame:
    """Encoded bytes, the publisher's RTP timestamp, whether decoding can start here, and
    (VP8) the picture id its packets carry; packetized on first use, then shared."""

    __slots__ = ("_packet", "_payloads", "codec", "data", "key", "kind", "ntp",
                 "picture_id", "size", "timestamp", "uniform")

    def __init__(self, kind: str, codec: str, data: bytes, timestamp: int, key: bool,
                 picture_id: int = NO_PICTURE_ID) -> None:
        self.kind = kind
        self.codec = codec.lower()
        self.data = data
        self.timestamp = timestamp
        self.key = key
        self.picture_id = picture_id
        self.ntp = ntp_now()  # when the fan-out got it: the sender report's clock
        self._payloads: list[bytes] | None = None
        self._packet: av.Packet[Any] | None = None
        self.size = 0  # payload octets of all its packets, once packetized
        self.uniform = False  # all its packets but the last of one size (UDP GSO can go)

    @property
    def payloads(self) -> list[bytes]:
        """The frame's RTP payloads, in order (the last one carries the marker)."""
        if self._payloads is None:
            payloads = self._payloads = packetize(self.codec, self.data, self.picture_id)
            self.size = sum(map(len, payloads))
            self.uniform = len({len(p) for p in payloads[:-1]}) == 1
        return self._payloads

    def restamped(self, timestamp: int) -> Frame:
        """The same frame at another RTP timestamp (one viewer's timestamps kept going
        forward across a move between layers, `forward.py`); its payloads are shared."""
        other = Frame.__new__(Frame)
        for name in Frame.__slots__:
            setattr(other, name, getattr(self, name))
        other.timestamp = timestamp & 0xFFFFFFFF
        other._packet = None
        return other

    @property
    def packet(self) -> av.Packet[Any]:
        """The frame as aiortc's senders take it (`Encoder.pack`)."""
        if self._packet is None:
            packet = av.Packet(self.data)
            packet.pts = self.timestamp
            packet.time_base = VIDEO_CLOCK if self.kind == "video" else AUDIO_CLOCK
            self._packet = packet
        return self._packet


def packetize(codec: str, data: bytes, picture_id: int) -> list[bytes]:
    """RTP payloads of one frame, cut as aiortc's payloaders cut them (RFC 7741 for VP8
    with a 15-bit picture id, RFC 6184 single NAL / STAP-A / FU-A for H.264; audio frames
    are one payload each)."""
    if codec == "vp8":
        return vpx.Vp8Encoder._packetize(data, picture_id)
    if codec == "h264":
        return h264.H264Encoder._packetize(h264.H264Encoder._split_bitstream(data))
    return [data]
