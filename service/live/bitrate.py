"""The bitrate the server asks of a publisher (REMB), from its own receive path only.

aiortc's receiver runs a delay-based estimator (`RemoteBitrateEstimator`) whose arrival
times are read in a Python event loop shared with every other connection of the node: the
loop's own scheduling delays look like queueing on the link, so it reports over-use that
isn't there and holds browser publishers at 0.3-1.1 Mbps on a clean link. Rooms switch it
off and steer with what the network tells without doubt: how many of the publisher's
media packets went missing on their way here, and how much arrived.

Each second: loss under 2% raises the estimate 8% (at least 1.5 times what arrived), loss
over 10% lowers it below what arrived, between the two it holds. It starts at
`START_BPS` (browsers take a REMB in their first seconds as their starting rate). Viewers
never enter into it: each viewer's link is that viewer's matter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci

log = logging.getLogger("kumpul.live")
START_BPS = 2_500_000
MIN_BPS = 100_000
MAX_BPS = 6_000_000
TICK_SECONDS = 1.0


class ReceivePath:
    """What arrived of one publisher's media (one SSRC) and the REMB it earns."""

    def __init__(self, now: float | None = None) -> None:
        self.bps = START_BPS
        self._bytes = 0
        self._received = 0
        self._highest: int | None = None  # extended sequence number
        self._expected_from: int | None = None
        self._at = time.monotonic() if now is None else now
        self.loss = 0.0

    def packet(self, sequence: int, size: int) -> None:
        self._bytes += size
        self._received += 1
        if self._highest is None:
            self._highest = sequence
            self._expected_from = sequence
            return
        delta = (sequence - self._highest) & 0xFFFF
        if delta < 0x8000:  # newer (older ones are reordered or repeated)
            self._highest += delta

    def tick(self, now: float | None = None) -> int:
        """Close one interval: the new estimate (bits per second)."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._at, 1e-3)
        rate = self._bytes * 8 / elapsed
        expected = 0
        if self._highest is not None and self._expected_from is not None:
            expected = self._highest - self._expected_from + 1
            self._expected_from = self._highest + 1
        self.loss = max(0.0, (expected - self._received) / expected) if expected else 0.0
        if self.loss > 0.10:
            self.bps = int(min(self.bps, rate) * (1 - 0.5 * self.loss))
        elif self.loss < 0.02 and expected:
            self.bps = int(max(self.bps * 1.08, rate * 1.5))
        self.bps = max(MIN_BPS, min(MAX_BPS, self.bps))
        self._bytes = self._received = 0
        self._at = now
        return self.bps


class Steering:
    """Sends a publisher's video receiver REMBs from its `ReceivePath`, in place of
    aiortc's own estimate."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self.receiver = receiver
        self.path = ReceivePath()
        self.media_ssrc: int | None = None
        self.sent: list[int] = []  # REMB values sent, for tests and logs
        self._first = asyncio.Event()
        receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]
        self._task = asyncio.ensure_future(self._run())

    def observe(self, packet: RtpPacket) -> None:
        """A media packet (not a retransmission) arrived."""
        self.media_ssrc = packet.ssrc
        self._first.set()
        self.path.packet(packet.sequence_number, len(packet.payload) + packet.padding_size)

    async def _run(self) -> None:
        await self._first.wait()
        await self._remb(START_BPS)  # the starting rate, from the first packet on
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await self._remb(self.path.tick())

    async def _remb(self, bps: int) -> None:
        rtcp_ssrc: Any = getattr(self.receiver, "_RTCRtpReceiver__rtcp_ssrc", None)
        if rtcp_ssrc is None or self.media_ssrc is None:
            return
        self.sent.append(bps)
        try:
            await self.receiver._send_rtcp(RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                fci=pack_remb_fci(bps, [self.media_ssrc])))
        except Exception:  # a closing transport
            log.debug("REMB not sent", exc_info=True)

    def stop(self) -> None:
        self._task.cancel()
