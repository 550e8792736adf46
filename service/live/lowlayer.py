"""A room's low layer: the host's picture decoded once and encoded once more at ~360p and
~300 kbit/s, for every viewer whose link can't carry the original (`quality.py` moves them).

aiortc can't receive simulcast, so the server makes the second layer itself: one decoder
and one encoder per room, never per viewer, working in a thread of their own and only
while someone watches the layer (and `LINGER_SECONDS` after). Its frames keep the
original's timestamps, so a viewer moved between layers sees one continuous stream; its
codec is the publisher's (VP8 from browsers, H.264 from OBS), the codec every viewer of the
room negotiated.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from fractions import Fraction
from typing import Any

import av
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.video.frame import PictureType

from service.live.forward import Fanout

log = logging.getLogger("kumpul.live")
HEIGHT = 360
BITRATE = 300_000
FPS = 30
BACKLOG = 60  # source frames waiting for the thread; more and it starts over at a keyframe
LINGER_SECONDS = 20.0  # it keeps running this long after its last viewer left
BEHIND = 3  # frames waiting: the thread decodes (to keep its reference) but encodes only
            # the newest, so the layer's frame rate drops before anything stalls
_ENCODERS = {"vp8": ("libvpx", {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0",
                                "error-resilient": "1", "static-thresh": "0"}),
             "h264": ("libx264", {"preset": "ultrafast", "tune": "zerolatency",
                                  "profile": "baseline"})}


class LowLayer:
    """Decode the source fan-out's frames, scale, encode; publish into `self.fanout`."""

    def __init__(self, source: Fanout) -> None:
        self.source = source
        self.fanout = Fanout("video")
        self.fanout._request_keyframe = self._key_wanted
        self.fanout.cheap_keyframes = True
        self.skipped = 0  # source frames decoded but not encoded (the thread was behind)
        self.encoded = 0
        self.busy_seconds = 0.0  # thread time spent decoding, scaling and encoding
        self._loop: asyncio.AbstractEventLoop | None = None
        self._work: queue.Queue[tuple[RTCRtpCodecParameters, bytes, int, bool] | None] = (
            queue.Queue(BACKLOG))
        self._thread: threading.Thread | None = None
        self._force_key = threading.Event()
        self._reset = threading.Event()
        self._synced = False  # the decoder started at a keyframe of the source
        self._empty_since = 0.0
        source.listeners.append(self._on_source)

    @property
    def running(self) -> bool:
        return self._thread is not None

    async def _key_wanted(self) -> None:
        self._force_key.set()

    def _on_source(self, codec: RTCRtpCodecParameters, data: bytes, timestamp: int,
                   key: bool) -> None:
        if not self.fanout.viewers and not self.fanout.listeners:  # nobody on it (no
            now = time.monotonic()   # viewer, no edge node's relay): it stops after a while
            # (viewers come back down soon, and a start waits for a keyframe)
            self._empty_since = self._empty_since or now
            if now - self._empty_since > LINGER_SECONDS or not self.running:
                self._stop()
                return
        else:
            self._empty_since = 0.0
        if not self.running:
            self._start()
        if not self._synced:
            if not key:
                recent = self.source.recent_keyframe()  # it includes this frame
                if recent and len(recent) < BACKLOG - self._work.qsize():
                    self._synced = True
                    for frame in recent:
                        self._work.put_nowait((codec, frame.data, frame.timestamp,
                                               frame is recent[0]))
                else:
                    self.source.want_keyframe(recovery=True)  # for some viewers: pooled
                return
            self._synced = True
        try:
            self._work.put_nowait((codec, data, timestamp, key))
        except queue.Full:  # the thread fell behind: start over at the next keyframe
            self._synced = False
            self._drain()
            self._reset.set()
            self.source.want_keyframe()

    def _drain(self) -> None:
        while not self._work.empty():
            self._work.get_nowait()

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._synced = False
        self._force_key.set()
        self._thread = threading.Thread(target=self._run, name="low-layer", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        if self._thread is not None:
            self._drain()
            self._work.put(None)
            self._thread = None

    def close(self) -> None:
        self._stop()
        if self._on_source in self.source.listeners:
            self.source.listeners.remove(self._on_source)

    def _run(self) -> None:
        decoder: Any = None
        encoder: Any = None
        name = ""
        while True:
            item = self._work.get()
            if item is None:
                return
            codec, data, timestamp, _ = item
            if self._reset.is_set():  # frames were dropped: this one is a keyframe
                self._reset.clear()
                decoder = None
            started = time.thread_time()
            try:
                if decoder is None or name != codec.name.lower():
                    name = codec.name.lower()
                    decoder = av.CodecContext.create(name, "r")
                    encoder = None
                for frame in decoder.decode(av.Packet(data)):
                    if self._work.qsize() >= BEHIND:
                        self.skipped += 1
                        continue
                    if encoder is None:
                        encoder = self._encoder(name, frame.width, frame.height)
                    self._encode(encoder, codec, frame, timestamp)
            except (av.error.FFmpegError, ValueError):  # a broken frame: wait for a keyframe
                log.debug("low layer frame skipped", exc_info=True)
                decoder = None
                self._synced = False
            finally:
                self.busy_seconds += time.thread_time() - started

    def _encoder(self, name: str, width: int, height: int) -> Any:
        out_height = min(HEIGHT, height) // 2 * 2
        out_width = max(2, round(width * out_height / height / 2) * 2)
        library, options = _ENCODERS[name]
        encoder: Any = av.CodecContext.create(library, "w")
        encoder.width, encoder.height = out_width, out_height
        encoder.pix_fmt = "yuv420p"
        encoder.bit_rate = BITRATE
        encoder.framerate = FPS
        encoder.time_base = Fraction(1, 90000)
        encoder.options = {**options, "g": "100000"}
        encoder.gop_size = 100000
        encoder.max_b_frames = 0
        return encoder

    def _encode(self, encoder: Any, codec: RTCRtpCodecParameters, frame: av.VideoFrame,
                timestamp: int) -> None:
        small = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
        small.pts = timestamp
        if self._force_key.is_set():
            self._force_key.clear()
            small.pict_type = PictureType.I
        else:
            small.pict_type = PictureType.NONE
        for packet in encoder.encode(small):
            data = bytes(packet)
            self.encoded += 1
            if self._loop is not None and not self._loop.is_closed():
                try:
                    self._loop.call_soon_threadsafe(self.fanout.publish, codec, data,
                                                    timestamp)
                except RuntimeError:  # the loop closed meanwhile: the room is gone
                    return
