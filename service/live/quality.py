"""Adaptive quality per viewer: each viewer of the host is moved between the original
picture (high), the room's low layer (`lowlayer.py`) and sound only, from what its player
reports over RTCP: receiver reports' loss (and the round-trip time they give), REMB where
the player sends one.

- Down: two bad reports in a row (loss over 5%, a round trip over 0.8 s, or a REMB under
  half the layer's rate), one if the layer was a probe that just began.
- Up (probing): after `probe_wait` of clean reports (loss under 2%), one step; a probe that
  fails doubles the wait (up to 6 s toward high, 16 s toward low), one that holds for 3 s
  resets it. A viewer whose link clears is back on high within ~10 s.
- After a move, reports for `SETTLE_SECONDS` describe the old layer and are not counted.
- The viewer may choose a ceiling: "save data" (low at most) or audio only.

A slow viewer is never dropped: at worst it hears the host. Moves take effect at the new
layer's next keyframe (`ForwardedTrack.move_to`), so nobody sees a broken picture; moves
up to high ask the publisher for a keyframe within the pooled budget (`forward.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci


class Layer(StrEnum):
    audio = "audio"
    low = "low"
    high = "high"


ORDER = [Layer.audio, Layer.low, Layer.high]
LOSS_BAD = 0.05
LOSS_GOOD = 0.02
RTT_BAD = 0.8
PROBE_SECONDS = 4.0
PROBE_CAP = {Layer.high: 6.0, Layer.low: 16.0}
PROBE_HOLDS = 3.0
SETTLE_SECONDS = 1.5


@dataclass
class Quality:
    """The decisions for one viewer (pure: time comes in with each report)."""

    layer: Layer = Layer.high
    ceiling: Layer = Layer.high
    moved_at: float = -1e9
    probe_at: float | None = None  # when the current probe (a move up) began
    probe_wait: dict[Layer, float] = field(
        default_factory=lambda: {Layer.high: PROBE_SECONDS, Layer.low: PROBE_SECONDS})
    _bad: int = 0
    _good_since: float | None = None

    def choose(self, ceiling: Layer, now: float) -> Layer | None:
        """The viewer's own choice: at most `ceiling`, and that at once (if the link can't
        carry it, reports move the viewer down again)."""
        self.ceiling = ceiling
        return self._move(ceiling, now) if ceiling != self.layer else None

    def report(self, now: float, loss: float, rtt: float | None = None,
               remb: int | None = None, layer_bps: float | None = None) -> Layer | None:
        """A receiver report (or REMB) came: the layer to move to, if any."""
        if now - self.moved_at < SETTLE_SECONDS:
            return None
        probing = self.probe_at is not None and now - self.probe_at < PROBE_HOLDS
        if self.probe_at is not None and not probing:  # the probe held
            self.probe_wait[self.layer] = PROBE_SECONDS
            self.probe_at = None
        bad = (loss > LOSS_BAD or (rtt is not None and rtt > RTT_BAD)
               or (remb is not None and layer_bps is not None and remb < layer_bps / 2))
        if bad:
            self._bad += 1
            self._good_since = None
            if self._bad >= (1 if probing else 2) and self.layer != Layer.audio:
                if probing:  # back off before trying this layer again
                    self.probe_wait[self.layer] = min(self.probe_wait[self.layer] * 2,
                                                      PROBE_CAP[self.layer])
                return self._move(ORDER[ORDER.index(self.layer) - 1], now)
            return None
        self._bad = 0
        if loss >= LOSS_GOOD:
            self._good_since = None
            return None
        if self._good_since is None:
            self._good_since = now
        if ORDER.index(self.layer) < ORDER.index(self.ceiling):
            up = ORDER[ORDER.index(self.layer) + 1]
            if now - self._good_since >= self.probe_wait[up]:
                moved = self._move(up, now)
                self.probe_at = now
                return moved
        return None

    def _move(self, layer: Layer, now: float) -> Layer:
        self.layer, self.moved_at = layer, now
        self._bad, self._good_since, self.probe_at = 0, None, None
        return layer


class Follow:
    """Listens to one viewer's RTCP (its video and audio senders) and applies `Quality`'s
    moves through `apply`."""

    def __init__(self, video: RTCRtpSender, audio: RTCRtpSender | None,
                 apply: Callable[[Layer], None], layer_bps: Callable[[Layer], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quality = Quality()
        self.apply, self.layer_bps, self.clock = apply, layer_bps, clock
        self.loss = {"video": 0.0, "audio": 0.0}
        self.rtt: float | None = None
        self.remb: int | None = None
        self.moves: list[tuple[float, Layer]] = []
        self._listen(video, "video")
        if audio is not None:
            self._listen(audio, "audio")

    def _listen(self, sender: RTCRtpSender, kind: str) -> None:
        original = sender._handle_rtcp_packet

        async def handle(packet: Any) -> None:
            await original(packet)
            self._seen(sender, kind, packet)

        sender._handle_rtcp_packet = handle  # type: ignore[method-assign]

    def _seen(self, sender: RTCRtpSender, kind: str, packet: Any) -> None:
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            mine = [r for r in packet.reports if r.ssrc == sender._ssrc]
            if not mine:
                return
            self.loss[kind] = mine[0].fraction_lost / 256
            if kind == "video":
                self.rtt = getattr(sender, "_RTCRtpSender__rtt", None)
            # one decision per report: the video's, or the audio's while there is no video
            if kind == "video" or self.quality.layer == Layer.audio:
                self._decide()
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP \
                and kind == "video":
            try:
                self.remb = unpack_remb_fci(packet.fci)[0]
            except ValueError:
                return

    def _decide(self) -> None:
        layer = self.quality.layer
        moved = self.quality.report(
            self.clock(), max(self.loss.values()), self.rtt,
            self.remb if layer != Layer.audio else None, self.layer_bps(layer))
        if moved is not None:
            self._moved(moved)

    def choose(self, ceiling: Layer) -> None:
        moved = self.quality.choose(ceiling, self.clock())
        if moved is not None:
            self._moved(moved)

    def _moved(self, layer: Layer) -> None:
        self.moves.append((self.clock(), layer))
        self.remb = None  # a REMB measured on the old layer says nothing of the new one
        self.apply(layer)
