"""Adaptive quality per viewer: each viewer of the host is moved between the original
picture (high), the room's low layer (`lowlayer.py`) and sound only, from what its player
reports over RTCP: receiver reports' loss and round trip, NACKs, REMB where the player
sends one.

- Down: two bad reports in a row (loss over 5%, a round trip over 0.8 s, or on the original
  a REMB under half its rate), one if the layer was just reached by a move up.
- Up, only after a probe: after `probe_wait` of clean reports (loss under 2%), the viewer's
  link is tested without touching its picture: padding (recent packets sent again, which a
  player drops as duplicates) brings what it receives over the next layer's rate
  (`PROBE_OVERSHOOT`) for `PROBE_SECONDS` and two receiver reports (a link's burst
  allowance and queue hide the first seconds of excess: 1.5 s toward high, 3 s toward
  low, where the excess over a link a little too slow is small). The padding leaves right
  behind each picture (behind the sound for a viewer who hears only that): a link that
  cannot carry the probe fills its queue, its tail drop takes the padding that came last,
  and the next picture finds the room the link drained since. A NACK, loss (the
  picture's, the sound's, or the padding's own, on its RTX stream), a growing round trip,
  the sound's jitter rising (a queue growing at the bottleneck, before anything is lost)
  or a falling REMB (the player's own delay-based estimate, which sees a queue build
  before a receiver report's round trip does) during the probe ends it at once and
  doubles the wait (up to 4 s toward high, 32 s toward low); a probe that holds moves the
  viewer up. So a link that carries only the low layer keeps a steady picture (a failed
  probe costs lost padding and a moment of queueing, not a frozen frame), and a viewer
  whose link clears is back on high within ~10 s.
- After a move down or a failed probe, reports for `SETTLE_SECONDS` describe the old
  state and are not counted (after a move up, the first bad report moves back down).
- The viewer may choose a ceiling: "save data" (low at most) or audio only.
- From its first move on, a viewer's video is paced (`writer.RtpWriter.pace`) at
  `PACE_FACTOR` times its layer's rate: a move's replayed frames, a keyframe and resends
  drain through its link's queue instead of overflowing it.

A slow viewer is never dropped: at worst it hears the host. Moves take effect at the new
layer's next keyframe (`ForwardedTrack.move_to`), so nobody sees a broken picture; moves
up to high ask the publisher for a keyframe within the pooled budget (`forward.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from service.live.writer import PROBE_PICTURES, PROBE_RECENT


class Layer(StrEnum):
    audio = "audio"
    low = "low"
    high = "high"


ORDER = [Layer.audio, Layer.low, Layer.high]
LOSS_BAD = 0.05
LOSS_GOOD = 0.02
# a probe's padding rides last behind each picture, so the first packets a busy player or a
# full link loses are padding: this much of it lost fails a probe; between LOSS_GOOD and
# this, the report does not count toward the probe's holding (an unshaped link lost 4-6%
# of a probe's padding at a player busy decoding; one that cannot carry it, 10-50%)
PADDING_LOSS_BAD = 0.1
RTT_BAD = 0.8
RTT_RISE = 0.15  # a round trip this much over the recent minimum: a queue is building
REMB_FALL = 0.8  # a probe whose player's REMB falls under this share of its peak has failed
RTT_WINDOW = 10.0  # seconds of round trips (and jitter) the minimum is taken over
JITTER_RISE = 0.004  # the sound's jitter this much over its recent minimum: a queue grows
WAIT_SECONDS = 4.0  # clean reports before the first probe up
PROBE_CAP = {Layer.high: 4.0, Layer.low: 32.0}  # (a failed probe toward high is cheap)
# Padding at the next layer's rate for this long ... (a slow link's burst allowance and
# queue, 16 KB + 200 ms in bench/network.py, hide 2 s of a probe toward low from a
# 300 kbit link that cannot carry the low layer and its sound: the probe held and the
# move up cost the sound; in 3 s the queue shows)
PROBE_SECONDS = {Layer.high: 1.5, Layer.low: 3.0}
PROBE_REPORTS = {Layer.high: 2, Layer.low: 2}  # ... and reports during it, before moving up
# what a probe brings the viewer's video to, over the next layer's rate: a link's own burst
# allowance (a token bucket's, 16 KB here and there) and queue hide a smaller excess from
# a probe (toward high, 1.1 let probes that rode behind the picture pass on a 600 kbit link:
# all they lost was padding, and only after the deciding report)
PROBE_OVERSHOOT = {Layer.high: 1.3, Layer.low: 1.3}
ARRIVAL_HOLDS = 3.0  # after a move up, one bad report moves back down
SETTLE_SECONDS = 1.5
PACE_FACTOR = 1.5  # a moved viewer's packets leave at most at this times its layer's rate


@dataclass
class Quality:
    """The decisions for one viewer (pure: time comes in with each report)."""

    layer: Layer = Layer.high
    ceiling: Layer = Layer.high
    moved_at: float = -1e9
    arrived_at: float | None = None  # when the current layer was reached by a move up
    probing: Layer | None = None  # the layer a probe is testing the link for
    probe_at: float = 0.0
    settle_until: float = -1e9
    probe_wait: dict[Layer, float] = field(
        default_factory=lambda: {Layer.high: WAIT_SECONDS, Layer.low: WAIT_SECONDS})
    _bad: int = 0
    _good_since: float | None = None
    _probe_reports: int = 0
    _probe_remb: int | None = None  # the highest REMB a probe has brought so far
    _rtts: deque[tuple[float, float]] = field(default_factory=deque)
    _jitters: deque[tuple[float, float]] = field(default_factory=deque)

    def choose(self, ceiling: Layer, now: float) -> Layer | None:
        """The viewer's own choice: at most `ceiling`, and that at once (if the link can't
        carry it, reports move the viewer down again)."""
        self.ceiling = ceiling
        return self._move(ceiling, now) if ceiling != self.layer else None

    def round_trip(self, now: float, rtt: float) -> None:
        """One measured round trip (seconds), for the baseline a probe is judged against.
        A negative one (a player whose own clock stalled while it held the report) says
        nothing and is left out."""
        if rtt < 0:
            return
        self._rtts.append((now, rtt))
        while self._rtts and now - self._rtts[0][0] > RTT_WINDOW:
            self._rtts.popleft()

    def sound_jitter(self, now: float, jitter: float) -> None:
        """The sound's interarrival jitter (seconds) from a receiver report: a queue that
        grows at a link's bottleneck delays each packet a little more than the one before,
        which shows here within a report, before the link loses anything (padding
        behind the sound fills a 300 kbit link's queue to 0.6 s before the first loss)."""
        self._jitters.append((now, jitter))
        while self._jitters and now - self._jitters[0][0] > RTT_WINDOW:
            self._jitters.popleft()

    def _jittery(self) -> bool:
        if len(self._jitters) < 2:
            return False
        return self._jitters[-1][1] - min(j for _, j in self._jitters) > JITTER_RISE

    @property
    def last_jitter(self) -> float | None:
        return self._jitters[-1][1] if self._jitters else None

    @property
    def last_rtt(self) -> float | None:
        """The last round trip measured (not smoothed), for traces."""
        return self._rtts[-1][1] if self._rtts else None

    def _rising(self) -> bool:
        if len(self._rtts) < 2:
            return False
        return self._rtts[-1][1] - min(rtt for _, rtt in self._rtts) > RTT_RISE

    def nack(self, now: float) -> None:
        """The player asked for lost packets: a probe under way has found the link's limit."""
        if self.probing is not None and now - self.probe_at > 0.05:
            self._probe_failed(now)

    def report(self, now: float, loss: float, rtt: float | None = None,
               remb: int | None = None, layer_bps: float | None = None,
               padding_loss: float = 0.0) -> Layer | None:
        """A receiver report (or REMB) came: the layer to move to, if any. `padding_loss`
        is what the player lost of the stream a probe's padding goes on (RTX)."""
        if now < self.settle_until:
            return None
        if self.probing is not None:
            return self._probe_report(now, loss, remb, padding_loss)
        arriving = self.arrived_at is not None and now - self.arrived_at < ARRIVAL_HOLDS
        if self.arrived_at is not None and not arriving:  # the move up held
            self.probe_wait[self.layer] = WAIT_SECONDS
            self.arrived_at = None
        # a REMB counts against the original only: players' estimates fall far after any
        # congestion (a failed probe's included) and climb slowly, and below the low layer
        # only loss and delay may take a viewer's picture away
        bad = (loss > LOSS_BAD or (rtt is not None and rtt > RTT_BAD)
               or (self.layer == Layer.high and remb is not None and layer_bps is not None
                   and remb < layer_bps / 2))
        if bad:
            self._bad += 1
            self._good_since = None
            if self._bad >= (1 if arriving else 2) and self.layer != Layer.audio:
                if arriving:  # back off before trying this layer again
                    self._back_off(self.layer)
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
                self.probing, self.probe_at, self._probe_reports = up, now, 0
                self._probe_remb = None
        return None

    def _probe_report(self, now: float, loss: float, remb: int | None = None,
                      padding_loss: float = 0.0) -> Layer | None:
        assert self.probing is not None
        if remb is not None and (self._probe_remb is None or remb > self._probe_remb):
            self._probe_remb = remb
        falling = remb is not None and self._probe_remb is not None and \
            remb < self._probe_remb * REMB_FALL
        if loss >= LOSS_GOOD or padding_loss >= PADDING_LOSS_BAD or self._rising() or \
                self._jittery() or falling:
            self._probe_failed(now)
            return None
        if padding_loss >= LOSS_GOOD:  # a little: the link filling up, or a player behind
            if now - self.probe_at > 2 * PROBE_SECONDS[self.probing]:  # (for long: failed)
                self._probe_failed(now)
            return None  # either way this report proves nothing
        self._probe_reports += 1
        if now - self.probe_at >= PROBE_SECONDS[self.probing] and \
                self._probe_reports >= PROBE_REPORTS[self.probing]:
            up = self.probing
            moved = self._move(up, now)
            self.arrived_at = now
            return moved
        return None

    def _probe_failed(self, now: float) -> None:
        assert self.probing is not None
        self._back_off(self.probing)
        self.probing, self._good_since, self._bad = None, None, 0
        self.settle_until = now + SETTLE_SECONDS

    def _back_off(self, layer: Layer) -> None:
        self.probe_wait[layer] = min(self.probe_wait[layer] * 2, PROBE_CAP[layer])

    def _move(self, layer: Layer, now: float) -> Layer:
        # after a move down the next reports still describe the old layer's overload; after
        # a move up (a probe held) the first bad report is the new layer's
        down = ORDER.index(layer) < ORDER.index(self.layer)
        self.layer, self.moved_at = layer, now
        self._bad, self._good_since, self.arrived_at, self.probing = 0, None, None, None
        self.settle_until = now + SETTLE_SECONDS if down else now
        return layer


class Padding:
    """Recent packets of a viewer's video sender sent again, at a rate, while a probe runs:
    on the shared path right behind each picture its writer sends, or behind the sound's
    packets while it sends none (`writer.RtpWriter.probe`); on the classic path on a
    clock, through the sender's `_retransmit`.

    A player drops them as duplicates (they stay within its jitter buffer's reach: never
    older than `RECENT` packets); where RTX was negotiated they go on the RTX stream."""

    RECENT = PROBE_RECENT
    TICK = 0.02

    def __init__(self, sender: RTCRtpSender, sound: RTCRtpSender | None = None) -> None:
        self.sender, self.sound = sender, sound
        self.sent_bytes = 0  # what went out (a paced writer may hold padding back) ...
        self.wanted_bytes = 0  # ... of what the probes' rates asked for
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, bps: float, ramp: float = 0.25) -> None:
        self.stop()
        if bps > 0:
            self._task = asyncio.ensure_future(self._run(bps, ramp))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _writer(self, sender: RTCRtpSender | None = None) -> Any:
        """The shared path's writer of this viewer's video (or of `sender`: it took over
        the sender's NACK answers), or None on the classic path."""
        sender = sender or self.sender
        owner = getattr(sender._retransmit, "__self__", None)
        return owner if owner is not sender and hasattr(owner, "pad") else None

    def _recent(self) -> list[tuple[int, int]]:
        """The last packets sent to this viewer, oldest first: (sequence number, bytes).
        On the shared path the viewer's writer answers (`writer.RtpWriter.recent`), else
        aiortc's sender history."""
        writer = self._writer()
        if writer is not None:
            return list(writer.recent(self.RECENT))
        history: dict[int, Any] = getattr(self.sender, "_RTCRtpSender__rtp_history", {})
        packets = list(history.values())
        if not packets:
            return []
        first = int(packets[0].sequence_number)

        def age(packet: Any) -> int:  # sequence order across the 16-bit wrap
            delta = (int(packet.sequence_number) - first) % 65536
            return delta - 65536 if delta >= 32768 else delta

        return [(int(packet.sequence_number), len(packet.payload))
                for packet in sorted(packets, key=age)[-self.RECENT:]]

    async def _run(self, bps: float, ramp: float) -> None:
        started = last = time.monotonic()
        budget = 0.0
        turn = 0
        writer = self._writer()
        send = functools.partial(writer.pad, probe=True) if writer is not None \
            else self.sender._retransmit
        behind = writer.probe_sent if writer is not None else 0
        sound = self._writer(self.sound) if self.sound is not None and writer is not None \
            else None
        if sound is not None:  # with no picture, the padding goes behind the sound
            sound.then = functools.partial(writer.pad_behind, lead=True)
        try:
            with contextlib.suppress(ConnectionError):
                while True:
                    await asyncio.sleep(self.TICK)
                    now = time.monotonic()
                    rate = bps * (0.5 if now - started < ramp else 1.0)
                    if writer is not None and (sound is not None or
                                               now - writer.frame_at < PROBE_PICTURES):
                        # the padding goes right behind each picture, or with none
                        # behind the sound (`writer.RtpWriter.probe`)
                        writer.probe(rate)
                        self.sent_bytes += writer.probe_sent - behind
                        self.wanted_bytes += int(rate * (now - last) / 8)
                        behind, budget, last = writer.probe_sent, 0.0, now
                        continue
                    if writer is not None:  # (sound only: on this tick, as it comes)
                        writer.probe(0.0)
                    budget = min(budget + rate * (now - last) / 8, rate * 0.25 / 8)
                    last = now
                    recent = self._recent()
                    while budget > 0 and recent:
                        sequence, size = recent[turn % len(recent)]
                        turn += 1
                        sent = await send(sequence)
                        budget -= size + 40
                        self.sent_bytes += sent if isinstance(sent, int) else size + 40
                        self.wanted_bytes += size + 40
        finally:
            if writer is not None:
                writer.probe(0.0)
            if sound is not None:
                sound.then = None


class Follow:
    """Listens to one viewer's RTCP (its video and audio senders), applies `Quality`'s moves
    through `apply` and runs its probes as padding on the video sender."""

    def __init__(self, video: RTCRtpSender, audio: RTCRtpSender | None,
                 apply: Callable[[Layer], None], layer_bps: Callable[[Layer], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quality = Quality()
        self.apply, self.layer_bps, self.clock = apply, layer_bps, clock
        self.loss = {"video": 0.0, "audio": 0.0}
        self.rtt: float | None = None
        self.remb: int | None = None
        self.padding_loss = 0.0
        self.moves: list[tuple[float, Layer]] = []
        self.probes = 0
        self.padding = Padding(video, audio)
        # the last reports and what was made of them, for operators and benchmarks:
        # (time, kind, loss, rtt, remb, layer, probing, padding loss, sound's jitter)
        self.trace: deque[tuple[float, str, float, float | None, int | None, str, str,
                                float, float | None]] = deque(maxlen=240)
        self._listen(video, "video")
        if audio is not None:
            self._listen(audio, "audio")

    def close(self) -> None:
        self.padding.stop()

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
            if kind == "audio":  # (jitter is in the codec's clock: Opus's 48 kHz)
                writer = self.padding._writer(sender)
                rate = writer.clock_rate if writer is not None else 48000
                self.quality.sound_jitter(self.clock(), mine[0].jitter / rate)
            measured = _round_trip(sender, mine[0])
            if measured is not None:
                self.quality.round_trip(self.clock(), measured)
            if kind == "video":
                self.rtt = getattr(sender, "_RTCRtpSender__rtt", None)
                # the padding's own stream (RTX): where a probe's overflow lands
                rtx = [r for r in packet.reports if r.ssrc == sender._rtx_ssrc]
                self.padding_loss = rtx[0].fraction_lost / 256 if rtx else 0.0
            # one decision per report: the video's, or the audio's while there is no video
            if kind == "video" or self.quality.layer == Layer.audio:
                self._decide()
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if not self.trace or self.trace[-1][1] != "nack":  # (one line for a run of them)
                self.trace.append((self.clock(), "nack", 0.0, None, None,
                                   self.quality.layer.value, str(self.quality.probing or ""),
                                   0.0, None))
            self.quality.nack(self.clock())
            self._pad()
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP \
                and kind == "video":
            try:
                self.remb = unpack_remb_fci(packet.fci)[0]
            except ValueError:
                return

    def _decide(self) -> None:
        layer = self.quality.layer
        self.trace.append((self.clock(), "report", max(self.loss.values()),
                           self.quality.last_rtt,
                           self.remb, layer.value, (self.quality.probing or "").__str__(),
                           self.padding_loss, self.quality.last_jitter))
        moved = self.quality.report(
            self.clock(), max(self.loss.values()), self.rtt,
            self.remb, self.layer_bps(layer), self.padding_loss)
        if moved is not None:
            self._moved(moved)
        self._pad()

    def _pad(self) -> None:
        """Padding runs exactly while a probe does."""
        probing = self.quality.probing
        self._pace()
        if probing is None:
            self.padding.stop()
        elif not self.padding.running:
            self.probes += 1
            extra = PROBE_OVERSHOOT[probing] * self.layer_bps(probing) - \
                self.layer_bps(self.quality.layer)
            self.padding.start(max(extra, 0.0))

    def choose(self, ceiling: Layer) -> None:
        moved = self.quality.choose(ceiling, self.clock())
        if moved is not None:
            self._moved(moved)
        self._pad()

    def _moved(self, layer: Layer) -> None:
        before = self.moves[-1][1] if self.moves else Layer.high
        down = ORDER.index(layer) < ORDER.index(before)
        self.moves.append((self.clock(), layer))
        self.remb = None  # a REMB measured on the old layer says nothing of the new one
        self._pace()  # before the move: the new layer's replayed frames are paced
        writer = self.padding._writer()
        if down and writer is not None:  # what the old layer has waiting is of no use now
            writer.discard(resends=layer == Layer.audio)
        self.apply(layer)

    def _pace(self) -> None:
        """Once a viewer has moved, its link has shown a limit: its video leaves paced at
        `PACE_FACTOR` times its layer's rate (the layer a probe tests, while one runs; the
        low layer's while on sound only, for the move back up) on the shared path."""
        writer = self.padding._writer()
        if writer is None or not self.moves:
            return
        layer = self.quality.probing or self.quality.layer
        bps = self.layer_bps(Layer.low if layer == Layer.audio else layer)
        writer.pace(PACE_FACTOR * bps if bps > 0 else None)


def _round_trip(sender: RTCRtpSender, report: Any) -> float | None:
    """The round trip one receiver report measures (as aiortc's sender computes it, before
    its smoothing), or None when it answers an older sender report."""
    lsr = getattr(sender, "_RTCRtpSender__lsr", None)
    lsr_time = getattr(sender, "_RTCRtpSender__lsr_time", None)
    if lsr is None or lsr_time is None or report.lsr != lsr or not report.dlsr:
        return None
    return float(time.time() - lsr_time - report.dlsr / 65536)
