"""Light viewers for the live benchmarks (`bench/live.py`, `bench/scale.py`): aiortc peer
connections that do ICE, DTLS and SRTP key agreement like any viewer, then count frames by
the RTP marker bit (set on the last packet of each video frame) instead of decoding them.

Two kinds, so one can be checked against the other:

- `srtp` (the default, cheapest): once DTLS has made the SRTP keys, each datagram's RTP
  header is read where it arrives, on the ICE socket, without decrypting it (SRTP leaves
  the header in the clear: RFC 3711 3.1) and without handing it to aiortc at all. STUN
  (consent checks), DTLS and SRTCP still go to aiortc as usual.
- `rtp`: aiortc decrypts and parses every packet, and the receiver's handler counts the
  marker bits (the light viewer the benchmarks used first).

Neither viewer reassembles, decodes or reports (no RTCP receiver reports, no NACKs), so
the server sees a viewer with a clean link. What the viewers pay per packet is what bounds
how many of them one machine can stand in for.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

KINDS = ("srtp", "rtp")


class Counter:
    """When each frame's last packet came (monotonic seconds), and its RTP timestamp."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.stamps: list[int] = []
        self.packets = 0

    async def handle(self, packet: Any, arrival_time_ms: int) -> None:
        """Stands in for an aiortc receiver's `_handle_rtp_packet` (the `rtp` kind)."""
        self.packets += 1
        if packet.marker:
            self.times.append(time.monotonic())
            self.stamps.append(packet.timestamp)


def freezes(times: list[float]) -> int:
    """Freezes among frames that came at `times` (s), as WebRTC's statistics count them
    (`freezeCount`, W3C webrtc-stats): a gap between two frames of at least
    max(3 x, 150 ms +) the average of the previous 30 gaps."""
    count = 0
    gaps: list[float] = []
    for before, after in itertools.pairwise(times):
        gap = after - before
        if gaps:
            average = sum(gaps[-30:]) / len(gaps[-30:])
            if gap >= max(3 * average, average + 0.150):
                count += 1
        gaps.append(gap)
    return count


def lateness_ms(times: list[float], stamps: list[int], clock: int = 90_000) -> list[float]:
    """How late each frame came (ms) against the frame that came soonest after its capture:
    arrival minus RTP timestamp (unwrapped, on `clock`), less the smallest of those. A steady
    delay counts 0; a queue growing, or frames held back and let out in a burst, counts."""
    if not times:
        return []
    offsets: list[float] = []
    last, base = stamps[0], 0
    for at, stamp in zip(times, stamps, strict=True):
        if stamp < last and last - stamp > 1 << 31:
            base += 1 << 32  # the 32-bit timestamp wrapped
        last = stamp
        offsets.append(at - (base + stamp) / clock)
    least = min(offsets)
    return [(o - least) * 1000 for o in offsets]


def _srtp_counter(counter: Counter, dtls: Any,
                  original: Callable[[bytes, tuple[Any, ...]], None]
                  ) -> Callable[[bytes, tuple[Any, ...]], None]:
    marks, stamps, now = counter.times, counter.stamps, time.monotonic

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        # RTP/RTCP: first byte 128-191 (RFC 7983); RTCP: second byte 192-208 (RFC 5761)
        if 127 < data[0] < 192 and not 191 < data[1] < 209 and dtls._rx_srtp is not None:
            counter.packets += 1
            if data[1] & 0x80:
                marks.append(now())
                stamps.append(int.from_bytes(data[4:8], "big"))
            return
        original(data, addr)

    return datagram_received


def count_frames(pc: Any, counter: Counter, kind: str = "srtp") -> None:
    """Count `pc`'s received frames into `counter`. Call after `setLocalDescription` of
    the offer (its ICE sockets exist then) and before the answer is applied."""
    if kind not in KINDS:
        raise ValueError(f"light viewer kind: one of {KINDS}")
    if kind == "rtp":
        def on_track(track: Any) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers()
                            if t.receiver.track is track)
            receiver._handle_rtp_packet = counter.handle

        pc.on("track", on_track)
        return
    dtls = pc.getTransceivers()[0].receiver.transport
    for protocol in dtls.transport._connection._protocols:
        protocol.datagram_received = _srtp_counter(counter, dtls, protocol.datagram_received)
