"""The relay between a room's origin and an edge (`service/live/relay.py`), in one process:
an origin room with a real aiortc publisher, an edge room fed through the relay's messages
(a pipe in place of the WebSocket), real aiortc viewers on the edge. The edge's viewers
get the origin's frames unchanged, its low layer (~360p, made once at the origin) and
sound only; the publisher leaving and the session ending reach them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCSessionDescription

from service.live import relay
from service.live.ice import use_host_addresses
from service.live.quality import Layer
from service.live.rooms import Room
from tests.live import run_async
from tests.live.test_codecs import live_room
from tests.live.test_forward import prefer
from tests.live.test_quality import SizedViewer
from tests.live.test_recovery import until


@pytest.fixture(autouse=True)
def loopback() -> Iterator[None]:
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses([])


class TimedViewer(SizedViewer):
    """Keeps the pictures' heights and when the first came."""

    async def _read(self, track: Any) -> None:
        if track.kind == "video":
            first = await track.recv()
            self.first_frame_at = time.monotonic()
            self.heights.append(first.height)
        await super()._read(track)


class Pipe:
    """The edge's end of a relay connection, in memory."""

    def __init__(self) -> None:
        self.to_edge: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.to_origin: asyncio.Queue[str | None] = asyncio.Queue()
        self.carried = 0

    async def send(self, message: str) -> None:
        await self.to_origin.put(message)

    async def recv(self) -> str | bytes:
        message = await self.to_edge.get()
        if message is None:
            raise ConnectionError("origin gone")
        self.carried += len(message)
        return message

    async def close(self) -> None:
        self.to_edge.put_nowait(None)
        self.to_origin.put_nowait(None)


async def connected(origin: Room, edge: Room) -> tuple[Pipe, list[asyncio.Task[None]]]:
    pipe = Pipe()
    tasks: list[asyncio.Task[None]] = []
    ended: list[bool] = []

    async def connect() -> relay.Link | None:
        out = origin.relay()
        tasks.append(asyncio.ensure_future(out.run(pipe.to_edge.put, pipe.to_origin.get)))
        return pipe

    async def on_ended() -> None:
        ended.append(True)
        await edge.close()

    feed = edge.feed_from(connect, on_ended)
    await asyncio.wait_for(feed.ready.wait(), 5)
    return pipe, tasks


async def watch(room: Room, viewer: SizedViewer) -> str:
    prefer(viewer.pc, "video", "VP8")
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
    answer, resource = await room.view(viewer.pc.localDescription.sdp)
    await viewer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return resource


def test_edge_viewers_play_the_origin_and_move_between_layers() -> None:
    """Two viewers of the edge decode the origin's moving 480p picture and its sound; one
    moves to the low layer (360p, encoded once at the origin and relayed), then to sound
    only (pictures stop, sound goes on), then back to the original."""

    async def scenario() -> dict[str, Any]:
        origin, publisher = await live_room("VP8", size=(640, 480))
        origin.origin = True
        edge = Room("s", RTCConfiguration(), max_viewers=10)
        pipe, _ = await connected(origin, edge)
        out: dict[str, Any] = {"edge_live": edge.publishing, "codecs": edge.codecs()}
        crowd = [TimedViewer(), TimedViewer()]
        resources = [await watch(edge, viewer) for viewer in crowd]
        await asyncio.sleep(3)
        out["high"] = [set(v.heights[-10:]) for v in crowd]
        out["frames"] = [len(v.heights) for v in crowd]
        out["audio"] = [v.audio for v in crowd]
        out["first_frame"] = [(v.first_frame_at or 1e9) - v.started for v in crowd]
        edge.choose_quality(resources[0], Layer.low)
        await until(lambda: set(crowd[0].heights[-5:]) == {360}, 15)
        await asyncio.sleep(1.0)
        out["low"] = (set(crowd[0].heights[-5:]), set(crowd[1].heights[-5:]))
        out["low_made_at_origin"] = origin.low is not None and origin.low.encoded > 10
        out["edge_makes_none"] = edge.low is None
        edge.choose_quality(resources[0], Layer.audio)
        await asyncio.sleep(1.0)
        pictures, sound = len(crowd[0].heights), crowd[0].audio
        await asyncio.sleep(2.0)
        out["audio_only"] = (len(crowd[0].heights) - pictures, crowd[0].audio - sound)
        edge.choose_quality(resources[0], Layer.high)
        await until(lambda: set(crowd[0].heights[-5:]) == {480}, 8)
        out["back"] = set(crowd[0].heights[-5:])
        out["carried_mb"] = pipe.carried / 1e6
        for viewer in crowd:
            await viewer.close()
        await edge.close()
        await origin.close()
        await publisher.close()
        return out

    out = run_async(scenario())
    assert out["edge_live"] is True
    assert out["codecs"] == {"video_codec": "VP8", "audio_codec": "opus"}, out
    assert out["high"] == [{480}, {480}], out
    assert all(n > 40 for n in out["frames"]), out
    assert all(n > 50 for n in out["audio"]), out
    assert all(s < 1.5 for s in out["first_frame"]), out
    assert out["low"] == ({360}, {480}), out
    assert out["low_made_at_origin"] and out["edge_makes_none"], out
    pictures, sound = out["audio_only"]
    assert pictures <= 2 and sound > 50, out
    assert out["back"] == {480}, out


def test_the_publisher_leaving_and_the_session_ending_reach_the_edge() -> None:
    """The host stops: the edge's players are told (the edge no longer publishes) and the
    picture stops; the session ends at the origin: the edge's room ends too."""

    async def scenario() -> dict[str, Any]:
        origin, publisher = await live_room("VP8")
        origin.origin = True
        edge = Room("s", RTCConfiguration(), max_viewers=10)
        await connected(origin, edge)
        viewer = SizedViewer()
        await watch(edge, viewer)
        await asyncio.sleep(2.5)
        out: dict[str, Any] = {"moving": len(viewer.heights)}
        await origin.stop_publisher("host")
        await until(lambda: not edge.publishing, 3)
        out["edge_live"] = edge.publishing
        await asyncio.sleep(0.5)
        frames = len(viewer.heights)
        await asyncio.sleep(1.5)
        out["after_stop"] = len(viewer.heights) - frames
        await origin.close()
        await until(lambda: edge.feed is None, 3)
        out["edge_feed"] = edge.feed
        out["edge_viewers"] = len(edge.viewers)
        await viewer.close()
        await publisher.close()
        return out

    out = run_async(scenario())
    assert out["moving"] > 40, out
    assert out["edge_live"] is False, out
    assert out["after_stop"] <= 2, out
    assert out["edge_feed"] is None and out["edge_viewers"] == 0, out


def test_frames_keep_their_bytes_and_timestamps() -> None:
    """The wire format: a frame, a codec, the state, the end."""
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    message = relay.frame_message(2, True, 2**32 + 5, b"\x10\x02abc")
    assert message[0] == relay.FRAME and message[1] == 2 and message[2] == relay.KEY
    assert message.endswith(b"\x10\x02abc")
    described = relay.codec_message(0, relay.describe(codec))
    assert relay.read_codec(described[2:]) == codec
    assert relay.state_message({"host": True, "guest": False})[0] == relay.STATE
