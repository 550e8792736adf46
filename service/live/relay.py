"""The relay from a room's origin to an edge node: one WebSocket per edge and room.

An edge node serves viewers of a room whose publishers are on another node (the origin).
It opens `/api/live/{session}/relay` on the origin (signed as a node, `cluster/auth.py`)
and gets the room's encoded frames as they are, never re-encoded:

- each binary message is one frame: type, stream, flags (keyframe), RTP timestamp and the
  frame's bytes (the WebSocket frame carries its length); the streams are the host's and
  the guest's video and audio and the room's low layer (sent only while the edge asks);
- a stream's codec parameters come once, before its first frame (again only if they
  change); the publishers' state (who is on) comes at the start and on every change;
- video starts at a keyframe (the origin's cached one when it is recent); an edge that
  falls behind loses frames up to the next keyframe, asked for at once;
- keyframe requests flow back as small text messages, pooled first at the edge (its own
  `Fanout.want_keyframe`) and again at the origin.

The edge feeds each stream into its own `Fanout` with `Fanout.publish`, so its viewers are
served exactly as the origin's (start at a keyframe, the GOP cache, recovery, the low layer
and sound only of `quality.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from websockets.asyncio.client import ClientConnection, connect

from service.cluster import auth
from service.live.forward import Fanout

log = logging.getLogger("kumpul.live")

STREAMS = (("host", "video"), ("host", "audio"), ("guest", "video"), ("guest", "audio"),
           ("low", "video"))
LOW = 4
FRAME, CODEC, STATE, ENDED = 1, 2, 3, 4
_FRAME = struct.Struct("!BBBI")  # type, stream, flags (1: keyframe), RTP timestamp
_HEAD = struct.Struct("!BB")  # type, stream
KEY = 0x01
QUEUE_MESSAGES = 600  # at the origin, per edge: about 5 s of a room's frames
RETRY_SECONDS = 1.0  # an edge that lost its origin tries again this often
LOW_CHECK_SECONDS = 1.0


class Link(Protocol):
    """What an edge reads its origin through (a WebSocket client connection)."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


def frame_message(stream: int, key: bool, timestamp: int, data: bytes) -> bytes:
    return _FRAME.pack(FRAME, stream, KEY if key else 0, timestamp & 0xFFFFFFFF) + data


def describe(codec: RTCRtpCodecParameters) -> str:
    return json.dumps({"mimeType": codec.mimeType, "clockRate": codec.clockRate,
                       "channels": codec.channels, "payloadType": codec.payloadType,
                       "parameters": dict(codec.parameters)}, sort_keys=True)


def codec_message(stream: int, described: str) -> bytes:
    return _HEAD.pack(CODEC, stream) + described.encode()


def state_message(state: dict[str, bool]) -> bytes:
    return _HEAD.pack(STATE, 0) + json.dumps(state, sort_keys=True).encode()


ENDED_MESSAGE = _HEAD.pack(ENDED, 0)


def read_codec(raw: bytes) -> RTCRtpCodecParameters:
    found = json.loads(raw)
    return RTCRtpCodecParameters(mimeType=str(found["mimeType"]),
                                 clockRate=int(found["clockRate"]),
                                 channels=found.get("channels"),
                                 payloadType=found.get("payloadType"),
                                 parameters=dict(found.get("parameters") or {}))


class Outbound:
    """At the origin: one edge's copy of a room's streams, queued for its socket."""

    def __init__(self, fanouts: Sequence[Fanout], low: Callable[[], Fanout],
                 state: Callable[[], dict[str, bool]]) -> None:
        self.fanouts: list[Fanout | None] = [*fanouts, None]  # the low layer when asked
        self._low_source = low
        self._state = state
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_MESSAGES)
        self._codecs: dict[int, tuple[RTCRtpCodecParameters, str]] = {}
        self._synced: set[int] = set()  # video streams started at a keyframe
        self._listeners: list[tuple[Fanout, Any]] = []
        self._state_sent: dict[str, bool] | None = None
        self.closed = False
        self.sent = 0
        self.dropped = 0

    def open(self) -> None:
        """Subscribe to the room's streams. The codecs known and the recent keyframes (if
        any) go first, then the publishers' state: when the edge has the state, it can
        answer its players."""
        for stream, fanout in enumerate(self.fanouts):
            if fanout is not None:
                self._listen(stream, fanout)
                self._start(stream, fanout)
        self.state_changed()

    def _start(self, stream: int, fanout: Fanout) -> None:
        if fanout.codec is None:
            return
        self._describe(stream, fanout.codec)
        if fanout.kind == "video":
            recent = fanout.recent_keyframe()
            for i, frame in enumerate(recent):
                self._on_frame(stream, fanout.codec, frame.data, frame.timestamp, i == 0)

    def _listen(self, stream: int, fanout: Fanout) -> None:
        def on_frame(codec: RTCRtpCodecParameters, data: bytes, timestamp: int,
                     key: bool) -> None:
            self._on_frame(stream, codec, data, timestamp, key)

        fanout.listeners.append(on_frame)
        self._listeners.append((fanout, on_frame))

    def _describe(self, stream: int, codec: RTCRtpCodecParameters) -> bool:
        known = self._codecs.get(stream)
        if known is not None and known[0] is codec:
            return True
        described = describe(codec)
        if (known is None or known[1] != described) and \
                not self._put(codec_message(stream, described)):
            return False
        self._codecs[stream] = (codec, described)
        return True

    def _on_frame(self, stream: int, codec: RTCRtpCodecParameters, data: bytes,
                  timestamp: int, key: bool) -> None:
        video = STREAMS[stream][1] == "video"
        if video and stream not in self._synced:
            if not key:
                return
            self._synced.add(stream)
        sent = self._describe(stream, codec) and \
            self._put(frame_message(stream, key, timestamp, data))
        if not sent and video:  # the edge is behind: it starts again at the next keyframe
            self._synced.discard(stream)
            fanout = self.fanouts[stream]
            if fanout is not None:
                fanout.want_keyframe(recovery=True)

    def _put(self, message: bytes) -> bool:
        if self.closed:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    def state_changed(self) -> None:
        state = self._state()
        if state != self._state_sent and self._put(state_message(state)):
            self._state_sent = state

    def request(self, message: dict[str, Any]) -> None:
        """An edge's request: a keyframe of a stream, the low layer on or off."""
        if "low" in message:
            self._want_low(bool(message["low"]))
        stream = message.get("key")
        if isinstance(stream, int) and 0 <= stream < len(STREAMS):
            if stream == LOW:
                self._want_low(True)
            fanout = self.fanouts[stream]
            if fanout is not None:
                fanout.want_keyframe(recovery=bool(message.get("recovery")))

    def _want_low(self, wanted: bool) -> None:
        low = self.fanouts[LOW]
        if wanted and low is None:
            low = self.fanouts[LOW] = self._low_source()
            self._listen(LOW, low)
            self._start(LOW, low)
        elif not wanted and low is not None:
            self._unlisten(low)
            self.fanouts[LOW] = None
            self._synced.discard(LOW)

    def _unlisten(self, fanout: Fanout) -> None:
        for found, listener in list(self._listeners):
            if found is fanout:
                with contextlib.suppress(ValueError):
                    fanout.listeners.remove(listener)
                self._listeners.remove((found, listener))

    def close(self, ended: bool = False) -> None:
        """Stop copying; `ended`: the session ended (the edge ends its room too)."""
        if self.closed:
            return
        for fanout, _ in list(self._listeners):
            self._unlisten(fanout)
        while not self.queue.empty():
            self.queue.get_nowait()
        if ended:
            self.queue.put_nowait(ENDED_MESSAGE)
        self.queue.put_nowait(None)
        self.closed = True

    async def run(self, send: Callable[[bytes], Awaitable[None]],
                  receive: Callable[[], Awaitable[str | None]]) -> None:
        """Send the queue to the edge and take its requests, until either side ends."""

        async def pump() -> None:
            while True:
                message = await self.queue.get()
                if message is None:
                    return
                await send(message)
                self.sent += 1

        async def listen() -> None:
            while True:
                text = await receive()
                if text is None:
                    return
                with contextlib.suppress(ValueError, TypeError):
                    found = json.loads(text)
                    if isinstance(found, dict):
                        self.request(found)

        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(listen())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            self.close()


class EdgeFeed:
    """At an edge: a room's streams read from its origin into this node's fan-outs."""

    def __init__(self, fanouts: Sequence[Fanout], connect: Callable[[], Awaitable[Link | None]],
                 on_ended: Callable[[], Awaitable[object]],
                 on_state: Callable[[], None]) -> None:
        self.fanouts = list(fanouts)
        self._connect = connect
        self._on_ended = on_ended
        self._on_state = on_state
        self.codecs: dict[int, RTCRtpCodecParameters] = {}
        self.live = {"host": False, "guest": False}
        self.ready = asyncio.Event()  # the origin answered with its state
        self.frames = 0
        self._link: Link | None = None
        self._low_sent = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        for stream, fanout in enumerate(self.fanouts):
            fanout.feed(self._asker(stream))

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def _asker(self, stream: int) -> Callable[[], Awaitable[None]]:
        async def ask() -> None:
            await self._send({"key": stream})
        return ask

    async def _send(self, message: dict[str, Any]) -> None:
        link = self._link
        if link is not None:
            with contextlib.suppress(Exception):  # a closing link: the next one starts over
                await link.send(json.dumps(message))

    async def _run(self) -> None:
        while not self._closed:
            try:
                link = await self._connect()
            except Exception as exc:  # the origin is unreachable: try again shortly
                log.info("relay: origin unreachable", extra={"error": str(exc)})
                link = None
            if link is None:
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._link, self._low_sent = link, False
            watcher = asyncio.ensure_future(self._watch_low())
            try:
                while not self._closed:
                    message = await link.recv()
                    if isinstance(message, bytes) and self._take(message):
                        self._closed = True
                        await self._on_ended()
                        return
            except Exception as exc:  # the origin went away
                log.info("relay: origin lost", extra={"error": str(exc)})
            finally:
                watcher.cancel()
                self._link = None
                self._lost()
                with contextlib.suppress(Exception):
                    await link.close()
            if not self._closed:
                await asyncio.sleep(RETRY_SECONDS)

    async def _watch_low(self) -> None:
        """Ask for the low layer only while a viewer here plays it."""
        while True:
            wanted = bool(self.fanouts[LOW].viewers)
            if wanted != self._low_sent:
                self._low_sent = wanted
                await self._send({"low": wanted})
            await asyncio.sleep(LOW_CHECK_SECONDS)

    def _take(self, message: bytes) -> bool:
        """One message from the origin; True when the session ended."""
        kind = message[0]
        if kind == FRAME:
            # (the edge's fan-out reads keyframes from the data itself, as the origin's)
            _, stream, _flags, timestamp = _FRAME.unpack_from(message)
            codec = self.codecs.get(stream)
            if codec is not None and stream < len(self.fanouts):
                self.frames += 1
                self.fanouts[stream].publish(codec, message[_FRAME.size:], timestamp)
        elif kind == CODEC:
            stream = message[1]
            codec = read_codec(message[_HEAD.size:])
            self.codecs[stream] = codec
            if stream < len(self.fanouts) and self.fanouts[stream].codec is None:
                self.fanouts[stream].codec = codec  # players can be answered before a frame
        elif kind == STATE:
            state = json.loads(message[_HEAD.size:])
            for slot in ("host", "guest"):
                now = bool(state.get(slot))
                if self.live[slot] and not now:
                    self._pause(slot)
                self.live[slot] = now
            self.ready.set()
            self._on_state()
        elif kind == ENDED:
            return True
        return False

    def _pause(self, slot: str) -> None:
        """A publisher left: its viewers here wait for the next one's keyframe."""
        for stream, (name, _) in enumerate(STREAMS):
            if name in (slot, "low" if slot == "host" else "") and stream < len(self.fanouts):
                for viewer in tuple(self.fanouts[stream].viewers):
                    viewer.pause()

    def _lost(self) -> None:
        self.ready.clear()
        for slot in ("host", "guest"):
            if self.live[slot]:
                self._pause(slot)
            self.live[slot] = False
        self._on_state()

    async def close(self) -> None:
        self._closed = True
        link = self._link
        if link is not None:
            with contextlib.suppress(Exception):
                await link.close()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class _Socket:
    """A WebSocket client connection as a `Link`."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: str) -> None:
        await self.connection.send(message)

    async def recv(self) -> str | bytes:
        return await self.connection.recv()

    async def close(self) -> None:
        await self.connection.close()


async def dial(node_url: str, session_id: str, secret: str) -> Link:
    """Open a room's relay on the origin node at `node_url`."""
    path = f"/api/live/{session_id}/relay"
    scheme, _, rest = node_url.rstrip("/").partition("://")
    url = ("wss" if scheme == "https" else "ws") + "://" + rest + path
    connection = await connect(url, additional_headers={
        auth.HEADER: auth.sign(secret, "GET", path)}, max_size=None, compression=None,
        open_timeout=5, ping_interval=5, ping_timeout=10)
    return _Socket(connection)
