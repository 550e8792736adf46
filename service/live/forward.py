"""Fan-out without re-encoding: the publisher's encoded frames go to every viewer as they are.

aiortc decodes what it receives and encodes what it sends; its MediaRelay shares decoded
frames, so each viewer still costs an encoder. Here the publisher's receiver hands its
re-assembled *encoded* frames (VP8, H.264 or Opus, as depayloaded by the jitter buffer)
to a `Fanout` instead of its decoder, and each viewer's sender gets them as `av.Packet`s,
which aiortc only packetizes (`Encoder.pack`), never encodes.

Each frame is a `frames.Frame`, made once and shared by every viewer of the fan-out. With
`KUMPUL_FORWARD_PATH=shared` (the default) a viewer's track hands it straight to the
viewer's `writer.RtpWriter`, which sends the payloads packetized once per layer with only
the header and SRTP made per viewer; with `classic` the track queues it for aiortc's
sender, which packetizes it again for every viewer.

A viewer starts at a keyframe: on joining (and when it reports loss with a PLI or FIR) the
publisher is asked for one, and the viewer's track skips delta frames until it arrives.
Requests go to the publisher's media SSRC (never its RTX one, which encoders ignore) and
are pooled: at most one per second toward a publisher for viewers starting, and at most
one per `RECOVERY_SECONDS` for viewers recovering from loss, so a struggling viewer never
forces keyframes on everyone else. A viewer (re)starting within a second of a keyframe
starts from it, replayed from the fan-out's cache, and asks for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtpPacket,
)

from service.live.bitrate import Steering
from service.live.frames import AUDIO_CLOCK, NO_PICTURE_ID, VIDEO_CLOCK, Frame

__all__ = ["AUDIO_CLOCK", "VIDEO_CLOCK", "Fanout", "ForwardedTrack", "Frame", "is_keyframe"]
log = logging.getLogger("kumpul.live")
CATCH_UP_TICKS = 2 * 90000  # a video frame this far behind the last sent goes right after it
QUEUE_FRAMES = 120  # per viewer; a viewer further behind than this drops frames
ASK_AGAIN_SECONDS = 0.5  # a viewer still waiting for a keyframe asks again this often
START_SECONDS = 1.0  # at most one keyframe request per publisher this often
RECOVERY_SECONDS = 5.0  # ... and for viewers recovering from loss, this often
GOP_CACHE_SECONDS = 1.0  # a viewer starting this soon after a keyframe starts from it


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded video frame can start decoding."""
    if codec == "VP8":
        return bool(data) and not data[0] & 0x01  # P bit clear: key frame (RFC 6386 9.1)
    if codec == "H264":
        # Annex B: any IDR (5) or SPS (7) NAL unit
        i = 0
        while True:
            i = data.find(b"\x00\x00\x01", i)
            if i < 0 or i + 3 >= len(data):
                return False
            if data[i + 3] & 0x1F in (5, 7):
                return True
            i += 3
    return True  # audio


class ForwardedTrack(MediaStreamTrack):
    """What one viewer's sender reads: the publisher's encoded frames, from a keyframe on.
    A video track may move to another fan-out of the same codec (the room's low layer,
    `lowlayer.py`) or to none (audio only); a move takes effect at the new source's next
    keyframe, the old one playing until then.

    The low layer keeps the original's timestamps but runs a few frames behind it, so its
    keyframe after a move can carry a timestamp the viewer already had: a receiver joins
    packets of one timestamp into one frame and decodes only the first picture (the viewer
    stays on the old layer's last picture, smeared by the new one's deltas). So a video
    frame not after the last one this viewer was given goes out one tick after it (as an
    SFU's RTP munger keeps timestamps going forward): the new layer's first frames come a
    tick apart until its own timestamps are ahead, and no offset stays to move the picture
    away from the sound."""

    def __init__(self, kind: str, fanout: Fanout, codec: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.codec = codec  # what the viewer negotiated (None: whatever comes)
        self._codec = codec.lower() if codec else None
        self._fanout: Fanout | None = fanout
        self._next: Fanout | None = None  # moving there at its next keyframe
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue(QUEUE_FRAMES)
        self._write: Callable[[Frame], int] | None = None  # the shared path's writer
        self._started = kind == "audio"
        self._recovering = False  # waiting for a keyframe after a loss (not a start)
        self._reading = False
        self._asked_at = time.monotonic()
        self._last_ts: int | None = None  # the last video timestamp it was given
        self._hold = False  # moving down: the old source's frames stop at once
        self.sent = 0
        self.on_pause: Callable[[], None] | None = None

    @property
    def source(self) -> Fanout | None:
        """Where its frames come from now (None: nowhere, audio only)."""
        return self._fanout

    def write_with(self, write: Callable[[Frame], int]) -> None:
        """The shared path: frames go to `write` as they come (no queue, no task); the
        viewer's transport is up, so it starts now, at a keyframe."""
        self._write = write
        self._reading = True
        self._drain()  # (sound queued before the transport was up: stale)
        self.restart()

    def offer(self, frame: Frame, source: Fanout | None = None) -> None:
        key = frame.key
        if self._codec is not None and frame.codec != self._codec:
            self.close()  # a publisher with another codec: this viewer can't play it
            return
        if self._hold and self._next is not None and source is self._fanout:
            return  # a link too slow for the old source: its picture waits for the new one
        if source is not None and source is not self._fanout:
            if source is not self._next:
                return
            if not key:  # keep playing the old source until the new one's keyframe
                if time.monotonic() - self._asked_at > ASK_AGAIN_SECONDS:
                    self._asked_at = time.monotonic()
                    source.want_keyframe(recovery=True)
                return
            if self._fanout is not None:
                self._fanout.remove(self)
            self._fanout, self._next = source, None
            self._drain()
            self._started, self._recovering = True, False
        if not self._started:
            if not key:
                if time.monotonic() - self._asked_at > ASK_AGAIN_SECONDS:
                    self._ask()
                return
            self._started, self._recovering = True, False
        self._deliver(frame)

    def _deliver(self, frame: Frame) -> None:
        if self.kind == "video":
            frame = self._continued(frame)
        if self._write is not None:
            self._write(frame)
            self.sent += 1
            return
        if self._queue.full():  # a slow viewer: drop, and restart at the next keyframe
            self.restart(recovery=True)
            return
        self._queue.put_nowait(frame)

    def _continued(self, frame: Frame) -> Frame:
        """`frame`, with a timestamp after the last one this viewer was given if it was
        not (a frame further behind starts a new timeline: another publisher's)."""
        last = self._last_ts
        if last is not None and (last - frame.timestamp) & 0xFFFFFFFF < CATCH_UP_TICKS:
            if self._write is not None:
                frame.payloads  # noqa: B018 - packetized once for the layer, then shared
            frame = frame.restamped(last + 1)
        self._last_ts = frame.timestamp
        return frame

    def move_to(self, fanout: Fanout | None, hold: bool = False) -> None:
        """Play `fanout` from its next keyframe on (None: stop sending video now); with
        `hold` (a move down, for a link that can't carry the current source) the current
        source's frames stop now and the picture waits for the new one's keyframe."""
        self._hold = hold
        if fanout is None:
            for found in (self._fanout, self._next):
                if found is not None:
                    found.remove(self)
            self._fanout = self._next = None
            self._drain()
            self._started = False
            return
        if fanout is self._fanout:
            if self._next is not None:
                self._next.remove(self)
                self._next = None
            return
        if self._next is not None and self._next is not fanout:
            self._next.remove(self)
        if self._fanout is None:  # nothing playing: start there like a new viewer
            self._fanout, self._next = fanout, None
            fanout.viewers.add(self)
            self.restart()
            return
        self._next = fanout
        fanout.viewers.add(self)
        if fanout.replay_into(self):  # a recent keyframe: switch now, from it
            return
        self._asked_at = time.monotonic()
        fanout.want_keyframe(recovery=True)  # a move is for one viewer's sake: pooled

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    @property
    def waiting(self) -> bool:
        """Waiting for a keyframe, and whether to recover from a loss."""
        return not self._started

    def restart(self, recovery: bool = False) -> None:
        """Start again at a keyframe: the source's recent one replayed if it has one (no
        request to the publisher at all), else the next, asked for now; `recovery` after a
        loss."""
        if self.kind == "video" and self._fanout is not None:
            if self._hold and self._next is not None:
                return  # moving down: the new source's keyframe is the restart
            self._drain()
            if self._reading and self._fanout.replay(self):
                self._started, self._recovering = True, False
                return
            self._started = False
            self._recovering = recovery
            self._ask()

    def _ask(self) -> None:
        self._asked_at = time.monotonic()
        if self._fanout is not None:
            self._fanout.want_keyframe(recovery=self._recovering)

    def pause(self) -> None:
        """The publisher left: nothing more until the next one's keyframe; the player is
        told its source is gone (RTCP BYE)."""
        if self.kind == "video":
            self.restart()
        if self.on_pause is not None:
            self.on_pause()

    def _leave(self) -> None:
        for found in (self._fanout, self._next):
            if found is not None:
                found.remove(self)

    def close(self) -> None:
        """No more frames: the viewer's sender ends at the end of the queue."""
        self._leave()
        self._drain()
        self._queue.put_nowait(None)

    async def recv(self) -> av.Packet[Any]:  # aiortc's senders take packets as well as frames
        """The classic path's frames; on the shared path nothing comes (the writer sends)
        until the track closes."""
        if self.readyState != "live":
            raise MediaStreamError
        if not self._reading:  # the viewer's transport is up only now: start it on a
            self._reading = True  # keyframe made from here on, not on one queued earlier
            self.restart()
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        self.sent += 1
        return frame.packet

    def stop(self) -> None:
        super().stop()
        self._leave()


class _Tap:
    """Stands in for the receiver's decoder queue: encoded frames go to the fan-out."""

    def __init__(self, original: queue.Queue[Any], fanout: Fanout) -> None:
        self.original = original
        self.fanout = fanout

    def get(self) -> Any:
        """The idle decoder thread waits here until the receiver stops."""
        return self.original.get()

    def put(self, item: tuple[RTCRtpCodecParameters, Any] | None) -> None:
        if item is None:  # the receiver stops: end its (idle) decoder thread
            self.original.put(None)
            self.fanout.detach(self)
            return
        codec, frame = item
        if self.fanout.source is self:
            self.fanout.publish(codec, frame.data, frame.timestamp)


class Fanout:
    """One slot of a room (the host's or the guest's video or audio) and the viewers reading
    it. Publishers come and go (a reconnect, a guest on stage); viewers stay subscribed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.codec: RTCRtpCodecParameters | None = None
        self.viewers: set[ForwardedTrack] = set()
        self.frames = 0
        self.source: _Tap | None = None
        self._request_keyframe: Callable[[], Awaitable[None]] | None = None
        self._asking: asyncio.Task[None] | None = None
        self._asked_at = -1e9  # when the publisher was last asked for a keyframe
        self._keyframe_at = -1e9  # when its last keyframe came
        self._later: asyncio.TimerHandle | None = None
        self._pending = False  # a request waits for its turn
        self.requests = 0  # keyframe requests sent to publishers
        self.keyframes = 0
        self.frame_at = -1e9  # when the last frame came (monotonic)
        self.bytes = 0  # of frames forwarded, all told
        self._gop: list[Frame] = []  # since the last keyframe, while it is recent
        self._picture_id = random.randrange(1 << 15)  # noqa: S311 - VP8: the layer's numbering
        self._gop_at = -1e9
        self.listeners: list[Callable[[RTCRtpCodecParameters, bytes, int, bool], None]] = []
        self.media_ssrc: int | None = None
        self.steering: Steering | None = None  # the publisher's REMB (`bitrate.py`)
        self.cheap_keyframes = False  # its keyframes cost nobody else (the low layer's)
        self.ended = False
        self.on_frame: Callable[[RTCRtpCodecParameters, bytes, int, bool], None] | None = None
        self.on_codec: Callable[[], None] | None = None  # the codec is known, or changed

    def attach(self, receiver: RTCRtpReceiver) -> None:
        """Take over a receiver's encoded frames (its decoder is left idle)."""
        self.media_ssrc = None
        handle_rtp = receiver._handle_rtp_packet
        payload_types: dict[int, RTCRtpCodecParameters] = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]

        if self.steering is not None:
            self.steering.stop()
        steering = self.steering = Steering(receiver) if self.kind == "video" else None

        async def learn_media_ssrc(packet: RtpPacket, arrival_time_ms: int) -> None:
            codec = payload_types.get(packet.payload_type)
            if codec is not None and not is_rtx(codec):  # the media, not a retransmission
                self.media_ssrc = packet.ssrc
                if steering is not None:
                    steering.observe(packet)
            await handle_rtp(packet, arrival_time_ms)

        receiver._handle_rtp_packet = learn_media_ssrc  # type: ignore[method-assign]

        async def pli() -> None:
            if self.media_ssrc is not None:
                self.requests += 1
                await receiver._send_rtcp_pli(self.media_ssrc)

        original = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
        tap = _Tap(original, self)
        receiver._RTCRtpReceiver__decoder_queue = tap  # type: ignore[attr-defined]
        self.source, self._request_keyframe = tap, pli
        self._gop = []
        for viewer in self.viewers:  # a new source: everyone starts at its first keyframe
            viewer.restart()

    def feed(self, request_keyframe: Callable[[], Awaitable[None]]) -> None:
        """Frames come from elsewhere through `publish` (an edge node's relay from the
        room's origin, `relay.py`); keyframe requests go to `request_keyframe`."""
        self._request_keyframe = request_keyframe

    def detach(self, source: _Tap | None = None) -> None:
        """The publisher left; viewers stay and wait for the next one (their players are
        told with an RTCP BYE, `signal_pauses`)."""
        if source is None or source is self.source:
            had = self.source is not None
            self.source, self._request_keyframe = None, None
            self._gop = []
            if self.steering is not None:
                self.steering.stop()
                self.steering = None
            if had:
                for viewer in tuple(self.viewers):
                    viewer.pause()

    def publish(self, codec: RTCRtpCodecParameters, data: bytes, timestamp: int) -> None:
        changed = self.codec is None or self.codec.mimeType != codec.mimeType
        self.codec = codec
        self.frame_at = time.monotonic()
        if changed and self.on_codec is not None:
            self.on_codec()
        self.frames += 1
        key = is_keyframe(codec.name, data)
        if key and self.kind == "video":
            self.keyframes += 1
            self._keyframe_at = time.monotonic()
            self._pending = False
        picture_id = NO_PICTURE_ID
        if codec.name.lower() == "vp8":
            picture_id = self._picture_id = (self._picture_id + 1) & 0x7FFF
        frame = Frame(self.kind, codec.name, data, timestamp, key, picture_id)
        self.bytes += len(data)
        if self.kind == "video":
            if key:
                self._gop, self._gop_at = [frame], time.monotonic()
            elif self._gop and time.monotonic() - self._gop_at <= GOP_CACHE_SECONDS:
                self._gop.append(frame)
            else:
                self._gop = []
        for viewer in tuple(self.viewers):
            viewer.offer(frame, self)
        for listener in tuple(self.listeners):
            listener(codec, data, timestamp, key)
        if self.on_frame is not None:
            self.on_frame(codec, data, timestamp, key)

    def recent_keyframe(self) -> list[Frame]:
        """The cached keyframe and the frames since (empty when none is recent)."""
        if not self._gop or time.monotonic() - self._gop_at > GOP_CACHE_SECONDS:
            return []
        return list(self._gop)

    def replay_into(self, track: ForwardedTrack) -> bool:
        """Switch a moving track over now, from the cached keyframe, if there is one."""
        if not self._gop or time.monotonic() - self._gop_at > GOP_CACHE_SECONDS:
            return False
        for frame in list(self._gop):
            track.offer(frame, self)
        return True

    def replay(self, track: ForwardedTrack) -> bool:
        """Give a starting viewer the recent keyframe and the frames since (the cached
        keyframe path); False when there is none recent enough (or, on the classic path,
        more than its queue holds)."""
        if not self._gop or time.monotonic() - self._gop_at > GOP_CACHE_SECONDS or \
                len(self._gop) >= QUEUE_FRAMES:
            return False
        for frame in list(self._gop):
            track._deliver(frame)
        return True

    def add(self, codec: str | None = None) -> ForwardedTrack:
        track = ForwardedTrack(self.kind, self, codec)
        self.viewers.add(track)  # it asks for its keyframe once its transport reads
        return track

    def remove(self, track: ForwardedTrack) -> None:
        self.viewers.discard(track)

    def want_keyframe(self, recovery: bool = False) -> None:
        """A viewer waits for a keyframe: ask the publisher now, or once the pooled gap
        since the last request (and, for a recovery, the last keyframe) has passed."""
        if self.kind != "video" or self.ended or self._request_keyframe is None:
            return
        now = time.monotonic()
        due = self._asked_at + START_SECONDS
        if recovery and not self.cheap_keyframes:
            due = max(due, max(self._asked_at, self._keyframe_at) + RECOVERY_SECONDS)
        if due <= now:
            self._send_request()
            return
        self._pending = True
        if self._later is None or self._later.when() > asyncio.get_running_loop().time() + (
                due - now):
            if self._later is not None:
                self._later.cancel()
            self._later = asyncio.get_running_loop().call_later(due - now, self._on_due)

    def _on_due(self) -> None:
        self._later = None
        if self._pending:  # still wanted (a keyframe may have come meanwhile)
            self._send_request()

    def _send_request(self) -> None:
        self._pending = False
        if self._request_keyframe is None:
            return
        self._asked_at = time.monotonic()
        if self._asking is None or self._asking.done():
            self._asking = asyncio.ensure_future(self._ask(self._request_keyframe))

    async def _ask(self, request: Callable[[], Awaitable[None]]) -> None:
        try:
            await request()
        except Exception:  # a closing transport: nothing to ask any more
            log.debug("keyframe request failed", exc_info=True)

    def end(self) -> None:
        """The room closes: every viewer's track ends."""
        self.ended = True
        if self._later is not None:
            self._later.cancel()
        self.detach()
        for viewer in tuple(self.viewers):
            viewer.close()
        self.viewers.clear()


def relay_losses(sender: RTCRtpSender, track: ForwardedTrack) -> None:
    """A viewer's PLI or FIR (lost pictures) has its track restart at the next keyframe,
    asked of the publisher within the recovery budget."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        await original(packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            track.restart(recovery=True)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def signal_pauses(sender: RTCRtpSender, track: ForwardedTrack) -> None:
    """When the publisher leaves, the viewer's player gets an RTCP BYE for this sender's
    SSRC (RFC 3550 6.6): its track ends (aiortc) or goes quiet, instead of showing a frozen
    frame as if live. The SSRC stays: a returning publisher's frames resume on it."""
    pending: set[asyncio.Task[None]] = set()

    async def bye() -> None:
        try:
            await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        except Exception:  # a closing transport: nobody left to tell
            log.debug("BYE not sent", exc_info=True)

    def on_pause() -> None:
        task = asyncio.ensure_future(bye())
        pending.add(task)
        task.add_done_callback(pending.discard)

    track.on_pause = on_pause
