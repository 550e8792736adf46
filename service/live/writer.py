"""One viewer's RTP send path, at the cost of a copy (`KUMPUL_FORWARD_PATH=shared`).

aiortc's sender repeats everything for every viewer and every packet: packetize the frame,
build an `RtpPacket` and its header extensions, serialize, protect with SRTP through a
copy in and a copy out, and await three coroutines down to the socket. Here the frame is
packetized once per layer (`frames.Frame`); per viewer and frame the writer makes its
header once (aiortc's own serialization of the negotiated extensions, `mid` and
`abs-send-time`), then per packet it writes the header and payload into one buffer,
patches marker and sequence number (and the VP8 picture id when this viewer's numbering
differs from the layer's), SRTP-protects the buffer in place with libsrtp and sends it to
the connection's nominated ICE pair. Where the kernel takes it (Linux UDP GSO,
`UDP_SEGMENT`), a frame's packets of one size go out in one `sendmsg`, laid out one after
the other in a scratch buffer the room's writers share (a frame is sent whole before the
next, all on the event loop).

Per viewer it keeps what must differ: its SSRC and RTX SSRC, sequence numbers, timestamp
origin, payload types and extension ids (from the parameters aiortc's sender is started
with), a history of what it sent for NACKs (answered with RTX when negotiated, RFC 4588; a
packet is sent again at most once per round trip, and resends take at most `RTX_SHARE` of
what the viewer is sent: a player that NACKs everything it misses on every new gap, as
aiortc's does, would otherwise multiply a congested link's load until nothing got through),
and the packet and octet counts that aiortc's sender reports in its RTCP sender reports
(it keeps running RTCP: reports, round trip, BYE). Only counters, no per-packet logging.

A writer may be paced (`pace`, set by `quality.Follow` once a viewer's link has shown
its limit): as libwebrtc's pacer does, packets then leave at most at that rate (a token
bucket of `PACE_BURST`), resends first, so a burst (a keyframe, a layer's replayed
second of frames after a move, a run of resends) drains through a slow link's short
queue instead of overflowing it. An unpaced writer sends each frame at once. A probe's
padding (`probe`) leaves right behind each frame, so that a link it overflows drops it
rather than the next picture.

aiortc and pylibsrtp internals used here are pinned (pyproject.toml) and guarded by
tests/live/test_aiortc_internals.py.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from aiortc.utils import random16, random32
from pylibsrtp._binding import ffi, lib

from service.live.forward import ForwardedTrack
from service.live.frames import NO_PICTURE_ID, NTP_EPOCH_OFFSET, Frame
from service.live.udpmux import MuxTransport

log = logging.getLogger("kumpul.live")
HISTORY_FRAMES = 128  # frames kept for NACKs (aiortc keeps 128 packets: this is more)
SLOT = 1500  # bytes a packet may take, SRTP tag included
ROOM_FOR_TAG = 16  # SRTP's authentication tag (10 bytes with SHA-1 80, 16 with GCM)
GSO_SEGMENTS = 40  # datagrams per sendmsg at most: 40 x 1500 stays under UDP's 64 KiB
UDP_SEGMENT = 103  # linux/udp.h: the GSO segment size, as a control message
PACE_BURST = 0.02  # a paced writer sends this many seconds of its rate at once ...
PACE_BURST_MIN = 2 * SLOT  # ... and at least this many bytes
PACE_BACKLOG = 2.0  # seconds of its rate a paced writer may hold back; beyond: dropped
RTX_SHARE = 0.5  # resends add at most this share to the bytes a viewer is sent ...
RTX_BURST = 48_000  # ... and at most this many bytes at once
RESEND_GAP = 0.05  # a packet is sent again at most once a round trip, and this often at most
RESENT_KEPT = 1024  # sequence numbers remembered as resent, and as asked for
# aiortc's player starts over (drops all it holds, waits, asks for a keyframe) for a packet
# that comes 100 or more behind the oldest one it waits for; it gives up a missing packet
# once 512 later ones have come. Counted back from the newest packet sent (conservative):
AGAIN_SAFE = 99  # a packet this far behind may go twice (a duplicate it ignores); older
# ones go once for each time the player asks for them (the first copy may have come) ...
PLAYER_REACH = 448  # ... and none this far behind (the player may have given it up)
OWED_SECONDS = 10.0  # a refused resend is owed this long at most
RESENDS_HELD = 256  # a paced writer holds at most this many resends back ...
RESEND_STALE = 3.0  # ... each for at most this long (then a player other than aiortc's,
# which keeps waiting on a hole, has moved on)
BACKLOG_BYTES = 1 << 20  # a socket this far behind (asyncio buffering): drop, count
PROBE_RECENT = 24  # a probe's padding: the last packets sent, again (`quality.Padding`),
PROBE_HOLD = 0.1  # ... at most this many seconds of its rate behind one frame
PROBE_PICTURES = 0.1  # a picture sent this recently: padding goes behind pictures only
_HEADER = struct.Struct("!BH")  # marker | payload type, sequence number
_TIMESTAMP = struct.Struct("!I")
_PICTURE_ID = struct.Struct("!H")
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
_NO_GSO = {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
_SENDER = "_RTCRtpSender__"
_DTLS = "_RTCDtlsTransport__"


def abs_send_time() -> int:
    """Now, as the abs-send-time header extension carries it (6.18 fixed-point seconds)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 262144) & 0xFFFFFF


def _abs_send_time_offset(header: bytes, ext_id: int | None) -> int:
    """Where the 3 bytes of abs-send-time sit in a serialized header (-1: not there)."""
    if not ext_id or not header[0] & 0x10:
        return -1
    profile, words = struct.unpack_from("!HH", header, 12)
    pos, end = 16, 16 + words * 4
    while pos < end:
        if profile == 0xBEDE:  # one-byte elements (RFC 8285 4.2)
            if header[pos] == 0:
                pos += 1
                continue
            element, length, pos = header[pos] >> 4, (header[pos] & 0x0F) + 1, pos + 1
        else:  # two-byte elements
            element, length, pos = header[pos], header[pos + 1], pos + 2
        if element == ext_id:
            return pos
        pos += length
    return -1


class Scratch:
    """Where writers lay out a frame's packets to protect and send them."""

    def __init__(self) -> None:
        self.cdata = ffi.new("unsigned char[]", GSO_SEGMENTS * SLOT)
        self.buffer = ffi.buffer(self.cdata)
        self.view = memoryview(self.buffer)
        self.length = ffi.new("int *")


def _remember(times: dict[int, float], sequence: int, now: float) -> None:
    times.pop(sequence, None)
    times[sequence] = now
    if len(times) > RESENT_KEPT:
        del times[next(iter(times))]


class RtpWriter:
    """Writes shared frames to one viewer, as its sender's SSRC, through its transport."""

    gso = True  # one sendmsg per frame where the kernel segments (bench: --no-gso)

    def __init__(self, sender: RTCRtpSender, parameters: RTCRtpSendParameters,
                 scratch: Scratch | None = None) -> None:
        codec = parameters.codecs[0]
        assert codec.payloadType is not None  # (aiortc has numbered it by now)
        self.sender = sender
        self.dtls: RTCDtlsTransport = sender.transport
        self.ssrc, self.rtx_ssrc = sender._ssrc, sender._rtx_ssrc
        self.payload_type = codec.payloadType
        self.clock_rate = codec.clockRate
        self.rtx_payload_type = next(
            (c.payloadType for c in parameters.codecs
             if is_rtx(c) and c.parameters.get("apt") == codec.payloadType), None)
        self.sequence = random16() % 32768  # the lower half, as aiortc: no early wrap
        self.rtx_sequence = random16() % 32768
        self.origin = random32()
        self.packets = 0
        self.octets = 0
        self.dropped = 0  # packets not sent: transport gone, or too far behind
        self.retransmitted = 0
        self.refused = 0  # NACKed packets not sent again (too soon, or over the share)
        self.resent_octets = 0  # payload bytes of NACKed packets sent again
        self._rtx_credit = float(RTX_BURST)
        self._resent: dict[int, float] = {}  # sequence number -> when last sent again
        self._asked: dict[int, float] = {}  # sequence number -> when last NACKed
        self._extensions = HeaderExtensionsMap()
        self._extensions.configure(parameters)
        self._mid = parameters.muxId
        template = RtpPacket(payload_type=self.payload_type, ssrc=self.ssrc)
        template.extensions.mid = self._mid
        template.extensions.abs_send_time = 0
        self._template = bytearray(template.serialize(self._extensions))
        self._abs_at = _abs_send_time_offset(bytes(self._template), next(
            (x.id for x in parameters.headerExtensions if x.uri == ABS_SEND_TIME), None))
        self._picture_delta = 0  # this viewer's VP8 picture id - the layer's
        self._last_picture_id: int | None = None
        self._begun_picture_id: int | None = None  # of the last frame begun (not held)
        self._history: deque[tuple[int, Frame, int, int]] = deque(maxlen=HISTORY_FRAMES)
        self.pace_bps: float | None = None
        self.paced = 0  # packets held back by the pacer and sent later
        self._tokens = 0.0
        self._tokens_at = time.monotonic()
        self._queue: deque[list[Any]] = deque()  # [frame, timestamp, delta, first, next]
        self.on_overflow: Callable[[], None] | None = None  # held back too long: restart
        self._queued_bytes = 0
        self._resends: dict[int, float] = {}  # held-back resends: sequence -> when asked
        self._owed: dict[int, float] = {}  # refused over the share: sent once paced (-> asked)
        self._drain_at: asyncio.TimerHandle | None = None
        self.probe_bps = 0.0  # a probe's padding, sent right behind each frame
        self.probe_sent = 0  # bytes of it sent
        self.frame_at = -1e9  # when a frame's last packet went
        self.then: Callable[[], None] | None = None  # after each frame (`pad_behind`)
        self._probe_budget = 0.0
        self._probe_at = 0.0
        self._probe_turn = 0
        self._scratch = scratch or Scratch()
        self._gso = self.gso
        self._socket: socket.socket | None = None
        self._nominated: dict[int, Any] = sender.transport.transport._connection._nominated
        self._pair: Any = None
        self._sendto: Any = None
        self._address: tuple[str, int] | None = None
        self._transport: Any = None

    def _route(self) -> bool:
        """The nominated ICE pair's datagram transport and address (changes are rare)."""
        pair = self._nominated.get(1)
        if pair is None:
            return False
        if pair is not self._pair:
            transport = pair.protocol.transport
            if isinstance(transport, MuxTransport):  # one port for all: its socket
                if transport.is_closing() or transport.mux.transport is None:
                    return False
                transport = transport.mux.transport
            self._pair, self._transport = pair, transport
            self._sendto, self._address = transport.sendto, pair.remote_addr
            sock = getattr(transport, "_sock", None)  # asyncio's own: for sendmsg
            self._socket = sock if isinstance(sock, socket.socket) else None
        return True

    def _header(self, timestamp: int) -> bytes:
        header = self._template
        _TIMESTAMP.pack_into(header, 4, timestamp)
        if self._abs_at >= 0:
            now = abs_send_time()
            header[self._abs_at:self._abs_at + 3] = now.to_bytes(3, "big")
        return bytes(header)

    def write(self, frame: Frame) -> int:
        """Send one frame; returns how many packets went out."""
        if self.dtls._state is not State.CONNECTED or (
                self._nominated.get(1) is not self._pair and not self._route()):
            self.dropped += len(frame.payloads)
            return 0
        if self._transport.get_write_buffer_size() > BACKLOG_BYTES:
            self.dropped += len(frame.payloads)  # the receiver NACKs or PLIs: it recovers
            return 0
        payloads = frame.payloads
        picture_id = frame.picture_id
        if picture_id != NO_PICTURE_ID:  # VP8: continuous for this viewer across restarts
            if self._last_picture_id is None:
                self._picture_delta = 0
            elif frame.key:
                self._picture_delta = (self._last_picture_id + 1 - picture_id) & 0x7FFF
            self._last_picture_id = (picture_id + self._picture_delta) & 0x7FFF
        delta = self._picture_delta if picture_id != NO_PICTURE_ID else 0
        timestamp = (self.origin + frame.timestamp) & 0xFFFFFFFF
        if self.pace_bps is None:
            first = self._begin(frame, timestamp, delta)
            sent = self._send_all(self._header(timestamp), payloads, first, delta,
                                  picture_id, frame.uniform, 0, len(payloads))
            self._count(sent)
            self.pad_behind()
            return sent
        if self._queued_bytes > self.pace_bps / 8 * PACE_BACKLOG:
            # frames not begun are dropped whole (no hole in the sequence numbers) and the
            # viewer starts again at a keyframe, from which this frame would not decode
            self._drop_queue()
            self._last_picture_id = self._begun_picture_id  # (nor was this frame sent)
            if self.on_overflow is not None:
                self.on_overflow()
            self.dropped += len(payloads)
            return 0
        self._queue.append([frame, timestamp, delta, 0, 0])
        self._queued_bytes += frame.size
        self._drain()
        return len(payloads)

    def _begin(self, frame: Frame, timestamp: int, delta: int) -> int:
        """A frame's first packet goes now: its sequence numbers, its place in the history
        for NACKs, the counts its sender reports."""
        first = self.sequence
        self.sequence = (first + len(frame.payloads)) & 0xFFFF
        self._history.append((first, frame, timestamp, delta))
        if frame.picture_id != NO_PICTURE_ID:
            self._begun_picture_id = (frame.picture_id + delta) & 0x7FFF
        self.octets += frame.size
        self._rtx_credit = min(self._rtx_credit + RTX_SHARE * frame.size, RTX_BURST)
        counters = vars(self.sender)
        counters[_SENDER + "octet_count"] += frame.size
        counters[_SENDER + "ntp_timestamp"] = frame.ntp
        counters[_SENDER + "rtp_timestamp"] = timestamp
        return first

    def _count(self, sent: int) -> None:
        self.packets += sent
        vars(self.sender)[_SENDER + "packet_count"] += sent

    def pace(self, bps: float | None) -> None:
        """Send at most `bps` from now on (None: each frame at once, what is held back
        goes now)."""
        self.pace_bps = bps
        if bps is None:
            self._tokens = float("inf")
        else:
            self._tokens = min(self._tokens, self._burst())
            self._tokens_at = time.monotonic()
            self._owe()
        self._drain()

    def _owe(self) -> None:
        """The resends refused over the share before pacing began, held now: an aiortc
        player waits for every hole in its sequence numbers (up to 512 packets, 15 s of
        a low layer) and asks again only for the last 128, and only at its next new gap,
        so a hole refused while the link was congested would hold its picture until then."""
        now, top = time.monotonic(), self.sequence
        for sequence in sorted(self._owed, key=lambda s: (top - s) & 0xFFFF, reverse=True):
            if len(self._resends) >= RESENDS_HELD:
                break
            if now - self._owed[sequence] < OWED_SECONDS and (top - sequence) & 0xFFFF < \
                    PLAYER_REACH:
                self._resends.setdefault(sequence, now)
        self._owed.clear()

    def _burst(self) -> float:
        assert self.pace_bps is not None
        return max(self.pace_bps / 8 * PACE_BURST, PACE_BURST_MIN)

    def _refill(self) -> None:
        if self.pace_bps is None:
            return
        now = time.monotonic()
        self._tokens = min(self._tokens + self.pace_bps / 8 * (now - self._tokens_at),
                           self._burst())
        self._tokens_at = now

    def discard(self, resends: bool = True) -> None:
        """Drop the frames held back, but the rest of a frame begun (a move down: the new
        layer's keyframe is what the viewer needs next, not the old layer), and with
        `resends` the resends held back too (a move to sound only: no picture waits for
        them). Resends kept are holes the player waits for: they go first, asked now."""
        self._drop_queue()
        if resends:
            self._resends.clear()
            self._owed.clear()
        else:
            now = time.monotonic()
            for sequence in self._resends:
                self._resends[sequence] = now
        self._drain()

    def _drop_queue(self, keep_begun: bool = True) -> None:
        """Drop what is held back (but the rest of a frame already begun, unless told)."""
        begun = self._queue[0] if keep_begun and self._queue and self._queue[0][4] else None
        for item in self._queue:
            if item is not begun:
                self.dropped += len(item[0].payloads) - item[4]  # (what was not sent)
        if len(self._queue) > (begun is not None):  # the next keyframe's picture id
            self._last_picture_id = self._begun_picture_id  # follows the last one sent
        self._queue.clear()
        self._queued_bytes = 0
        if begun is not None:
            self._queue.append(begun)
            self._queued_bytes = begun[0].size

    def _drain(self) -> None:
        """Send what the pacer holds while its bucket has bytes; come back when it will."""
        if self._drain_at is not None:
            self._drain_at.cancel()
            self._drain_at = None
        if not self._queue and not self._resends:
            return
        if self.dtls._state is not State.CONNECTED or (
                self._nominated.get(1) is not self._pair and not self._route()):
            self._drop_queue(keep_begun=False)
            self._resends.clear()
            self._owed.clear()
            return
        self._refill()
        now = time.monotonic()
        finished = False
        while self._resends and self._tokens > 0:
            sequence = next(iter(self._resends))
            if now - self._resends.pop(sequence) < RESEND_STALE:
                self._tokens -= self._resend(sequence)
        while self._queue and self._tokens > 0:
            item = self._queue[0]
            frame, timestamp, delta, first, start = item
            if not start:
                first = item[3] = self._begin(frame, timestamp, delta)
            payloads = frame.payloads
            stop, budget = start, self._tokens
            while stop < len(payloads) and budget > 0:
                budget -= len(payloads[stop]) + 40
                stop += 1
            self._count(self._send_all(self._header(timestamp), payloads, first, delta,
                                       frame.picture_id, frame.uniform, start, stop))
            self._tokens = budget
            if start or stop < len(payloads):
                self.paced += stop - start
            if stop < len(payloads):
                item[4] = stop
            else:
                self._queue.popleft()
                self._queued_bytes -= frame.size
                finished = True
        if finished and not self._queue:
            self.pad_behind()
        if (self._queue or self._resends) and self.pace_bps:
            wait = max(-self._tokens, 1200.0) / (self.pace_bps / 8)
            self._drain_at = asyncio.get_running_loop().call_later(wait, self._drain)

    def probe(self, bps: float) -> None:
        """Pad at `bps` right behind each frame sent from now on (0: stop), as a probe of
        the viewer's link (`quality.Padding`). Behind the frame, not between frames: a
        link that cannot carry the probe fills its queue, and its tail drop then takes
        the padding that comes last, while the next frame finds the room the link drained
        since (a smooth probe's overflow took the picture's packets with it, and each
        failed probe cost a viewer a frozen moment)."""
        if bps > 0 and not self.probe_bps:
            self._probe_budget, self._probe_at = 0.0, time.monotonic()
        self.probe_bps = bps

    def pad_behind(self, lead: bool = False) -> None:
        """A frame has gone: the probe's padding since the last one follows it. With
        `lead`, the frame was another writer's (the viewer's sound, through its `then`):
        padding follows it only while this writer sends no pictures (a viewer on sound
        only), else it would take the room the next picture needs."""
        now = time.monotonic()
        if not lead:
            self.frame_at = now
            if self.then is not None:
                self.then()
        if not self.probe_bps or (lead and now - self.frame_at < PROBE_PICTURES):
            return
        self._refill()
        self._probe_budget = min(
            self._probe_budget + self.probe_bps * (now - self._probe_at) / 8,
            self.probe_bps * PROBE_HOLD / 8)
        self._probe_at = now
        recent = self.recent(PROBE_RECENT)
        while self._probe_budget > 0 and recent and not self._resends and (
                self.pace_bps is None or self._tokens > 0):
            sequence, size = recent[self._probe_turn % len(recent)]
            self._probe_turn += 1
            sent = self._resend(sequence)
            self._probe_budget -= size + 40
            self.probe_sent += sent
            if self.pace_bps is not None:
                self._tokens -= sent

    def _send_all(self, header: bytes, payloads: list[bytes], sequence: int, delta: int,
                  picture_id: int, uniform: bool, start: int, stop: int) -> int:
        scratch = self._scratch
        buffer, view, length, cdata = scratch.buffer, scratch.view, scratch.length, \
            scratch.cdata
        srtp = self.dtls._tx_srtp._srtp[0]
        protect, pack, sendto, address = lib.srtp_protect, _HEADER.pack_into, \
            self._sendto, self._address
        size, payload_type = len(header), self.payload_type
        last = len(payloads) - 1
        batch = self._gso and uniform and stop - start > 1 and self._socket is not None \
            and not self._transport.get_write_buffer_size()
        sent = wire = offset = stride = 0
        for i in range(start, stop):
            payload = payloads[i]
            end = offset + size + len(payload)
            if end - offset > SLOT - ROOM_FOR_TAG:  # (aiortc's payloaders stay under 1300)
                self.dropped += 1
                continue
            buffer[offset:offset + size] = header
            pack(buffer, offset + 1, payload_type | 0x80 if i == last else payload_type,
                 (sequence + i) & 0xFFFF)
            buffer[offset + size:end] = payload
            if delta:
                _PICTURE_ID.pack_into(buffer, offset + size + 2,
                                      0x8000 | (picture_id + delta) & 0x7FFF)
            length[0] = end - offset
            if protect(srtp, cdata + offset, length) != 0:
                self.dropped += 1
                continue
            n = length[0]
            wire += n
            sent += 1
            if not batch:
                sendto(view[:n], address)
                continue
            stride = stride or n
            offset += n
            if offset + SLOT > len(buffer):  # full: these now, the rest after
                self._send_segments(view[:offset], stride)
                offset = 0
        if offset:
            self._send_segments(view[:offset], stride)
        counters = vars(self.dtls)
        counters[_DTLS + "tx_packets"] += sent
        counters[_DTLS + "tx_bytes"] += wire
        return sent

    def _send_segments(self, data: memoryview, stride: int) -> None:
        """Datagrams of `stride` bytes (the last may be shorter) in one sendmsg (UDP GSO);
        one by one through asyncio when the socket is full or the kernel refuses GSO."""
        assert self._socket is not None
        try:
            self._socket.sendmsg([data], [(socket.SOL_UDP, UDP_SEGMENT,
                                           struct.pack("=H", stride))], 0, self._address)
            return
        except (BlockingIOError, InterruptedError):
            pass  # asyncio buffers them and sends when the socket drains
        except OSError as exc:
            if exc.errno not in _NO_GSO:  # the socket is going away: nothing to send to
                self.dropped += -(-len(data) // stride)
                return
            log.info("UDP GSO refused (%s): sending packet by packet", exc)
            self._gso = RtpWriter.gso = False  # an old kernel, a device without it
        for at in range(0, len(data), stride):
            self._sendto(bytes(data[at:at + stride]), self._address)

    def find(self, sequence: int) -> tuple[Frame, int, int, int] | None:
        """The frame a sent sequence number belongs to: (frame, index, timestamp, delta)."""
        for first, frame, timestamp, delta in reversed(self._history):
            index = (sequence - first) & 0xFFFF
            if index < len(frame.payloads):
                return frame, index, timestamp, delta
        return None

    def recent(self, count: int) -> list[tuple[int, int]]:
        """The last `count` packets sent, oldest first: (sequence number, payload bytes),
        for a probe's padding (`quality.Padding`) to send again through `retransmit`."""
        found: list[tuple[int, int]] = []
        for first, frame, _, _ in reversed(self._history):
            for index in range(len(frame.payloads) - 1, -1, -1):
                found.append(((first + index) & 0xFFFF, len(frame.payloads[index])))
                if len(found) >= count:
                    return found[::-1]
        return found[::-1]

    async def retransmit(self, sequence: int) -> None:
        """A NACKed packet, again, unless it went again less than a round trip ago or the
        viewer's resends are over their share (`RTX_SHARE`; a paced writer's resends have
        no share of their own: they go first within the pace, and a refused one would
        leave its frame, and the picture, waiting for the next keyframe)."""
        now = time.monotonic()
        rtt = vars(self.sender).get(_SENDER + "rtt")
        last = self._resent.get(sequence)
        if last is not None and now - last < max(RESEND_GAP, rtt or 0.0):
            self.refused += 1  # (asked before the copy could have come: no new ask)
            return
        _remember(self._asked, sequence, now)
        if sequence in self._resends:  # held back already: it goes once
            return
        found = self.find(sequence)
        if found is None:
            return
        size = len(found[0].payloads[found[1]])
        if self._rtx_credit < size and self.pace_bps is None:
            self.refused += 1
            self._owed[sequence] = now
            if len(self._owed) > RESENDS_HELD:
                del self._owed[next(iter(self._owed))]
            return
        self._owed.pop(sequence, None)
        self._rtx_credit = max(self._rtx_credit - size, 0.0)
        self.resent_octets += size
        await self.pad(sequence)

    async def pad(self, sequence: int, probe: bool = False) -> int:
        """A sent packet, again: wrapped in RTX (RFC 4588) when the viewer negotiated it,
        else as it was (a NACK's answer, or with `probe` a probe's padding,
        `quality.Padding`). A paced writer sends a resend before its held-back frames,
        and a probe's padding only when nothing is held back. Returns the bytes sent now."""
        if self.pace_bps is None:
            return self._resend(sequence)
        self._refill()
        if self._queue or self._resends or self._tokens <= 0:
            if not probe and sequence not in self._resends:
                self._resends[sequence] = time.monotonic()
                if len(self._resends) > RESENDS_HELD:
                    del self._resends[next(iter(self._resends))]
                self._drain()
            return 0
        sent = self._resend(sequence)
        self._tokens -= sent
        return sent

    def _resend(self, sequence: int) -> int:
        """Send a packet again now; returns the bytes it took (0: not sent)."""
        behind = (self.sequence - sequence) & 0xFFFF
        if behind >= PLAYER_REACH or (
                behind > AGAIN_SAFE
                and self._resent.get(sequence, -1.0) >= self._asked.get(sequence, 0.0)):
            self.refused += 1
            return 0
        found = self.find(sequence)
        if found is None or self.dtls._state is not State.CONNECTED or not self._route():
            return 0
        _remember(self._resent, sequence, time.monotonic())
        frame, index, timestamp, delta = found
        payload: bytes | bytearray = frame.payloads[index]
        if delta:
            payload = bytearray(payload)
            _PICTURE_ID.pack_into(payload, 2, 0x8000 | (frame.picture_id + delta) & 0x7FFF)
        header = bytearray(self._header(timestamp))
        marker = 0x80 if index == len(frame.payloads) - 1 else 0
        if self.rtx_payload_type is not None:
            struct.pack_into("!I", header, 8, self.rtx_ssrc)
            payload = struct.pack("!H", sequence) + bytes(payload)
            payload_type, sequence = self.rtx_payload_type | marker, self.rtx_sequence
            self.rtx_sequence = (self.rtx_sequence + 1) & 0xFFFF
        else:
            payload_type = self.payload_type | marker
        _HEADER.pack_into(header, 1, payload_type, sequence)
        data = self.dtls._tx_srtp.protect(bytes(header) + bytes(payload))
        self._sendto(data, self._address)
        self.retransmitted += 1
        return len(data)


def write_through(sender: RTCRtpSender, track: ForwardedTrack,
                  scratch: Scratch | None = None) -> None:
    """Send `track`'s frames to this viewer through an `RtpWriter` from the moment aiortc
    starts the sender (its transport is up then), instead of through aiortc's own
    per-packet path; aiortc's sender keeps its RTCP (reports, NACKs, PLIs, BYE)."""
    start = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        sender.send = start  # type: ignore[method-assign]
        if sender.track is track and sender.transport.state == "connected":
            writer = RtpWriter(sender, parameters, scratch)
            writer.on_overflow = lambda: track.restart(recovery=True)
            sender._retransmit = writer.retransmit  # type: ignore[method-assign,assignment]
            track.write_with(writer.write)
        await start(parameters)

    sender.send = send  # type: ignore[method-assign]
