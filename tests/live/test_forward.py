"""Fan-out of encoded frames: viewers get the publisher's moving picture and sound, and the
server never encodes per viewer."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import time
from collections.abc import Iterator
from typing import Any

import av
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.codecs import vpx
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from service.live import forward
from service.live.ice import use_host_addresses
from tests.live import run_async


class MovingPicture(VideoStreamTrack):
    """A generated picture whose content changes every frame (a bar sweeping across)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.n = 0
        self.width, self.height = width, height

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        width, height = self.width, self.height
        frame = av.VideoFrame(width, height, "yuv420p")
        x = (self.n * 8) % (width - 16)
        row = bytes(x) + b"\xff" * 16 + bytes(width - 16 - x)
        luma, stride = frame.planes[0], frame.planes[0].line_size
        luma.update((row + bytes(stride - width)) * height)
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * plane.buffer_size)
        self.n += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


@pytest.fixture(autouse=True)
def loopback() -> Iterator[None]:
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses([])


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def prefer(pc: RTCPeerConnection, kind: str, name: str) -> None:
    codecs = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.name == name]
    for t in pc.getTransceivers():
        if t.kind == kind:
            t.setCodecPreferences(codecs)


class Viewer:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.frames: list[bytes] = []
        self.per_track: dict[str, list[bytes]] = {}
        self.audio = 0
        self.first_frame_at: float | None = None
        self.started = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def on_track(track: object) -> None:
            self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: object) -> None:
        from aiortc.mediastreams import MediaStreamError
        try:
            while True:
                frame = await track.recv()  # type: ignore[attr-defined]
                if getattr(track, "kind", "") == "video":
                    if self.first_frame_at is None:
                        self.first_frame_at = time.monotonic()
                    gray = frame.reformat(format="gray").planes[0]
                    start = 120 * gray.line_size
                    row = bytes(gray)[start:start + frame.width:8]
                    self.frames.append(row)
                    self.per_track.setdefault(track.id, []).append(row)  # type: ignore[attr-defined]
                else:
                    self.audio += 1
        except MediaStreamError:
            return

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()


class Server:
    """The server side, in-process: one publisher connection, a fan-out per track."""

    def __init__(self, codec: str = "VP8") -> None:
        self.codec = codec
        self.publisher = RTCPeerConnection()
        self.fanouts: dict[str, forward.Fanout] = {}
        self.viewers: list[RTCPeerConnection] = []
        self.ready = asyncio.Event()

        @self.publisher.on("track")
        def on_track(track: object) -> None:
            receiver = next(t.receiver for t in self.publisher.getTransceivers()
                            if t.receiver.track is track)
            fanout = self.fanouts[receiver.track.kind] = forward.Fanout(receiver.track.kind)
            fanout.attach(receiver)
            if len(self.fanouts) == 2:
                self.ready.set()

    async def view(self, viewer: Viewer) -> None:
        pc = RTCPeerConnection()
        self.viewers.append(pc)
        await pc.setRemoteDescription(await self._offer(viewer))
        for transceiver in pc.getTransceivers():
            fanout = self.fanouts[transceiver.kind]
            track = fanout.add()
            transceiver.direction = "sendonly"
            transceiver.sender.replaceTrack(track)
            forward.relay_losses(transceiver.sender, track)
        await pc.setLocalDescription(await pc.createAnswer())
        await viewer.pc.setRemoteDescription(pc.localDescription)

    async def _offer(self, viewer: Viewer) -> Any:
        prefer(viewer.pc, "video", self.codec)
        await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
        return viewer.pc.localDescription


def moving(frames: list[bytes]) -> bool:
    """The sweeping bar takes 38 positions: most consecutive frames differ."""
    changes = sum(a != b for a, b in itertools.pairwise(frames))
    return len(set(frames)) >= 20 and changes > len(frames) * 0.8


async def scenario(viewers: int, monkeypatch: pytest.MonkeyPatch,
                   codec: str = "VP8") -> dict[str, object]:
    encodes: dict[int, int] = {}
    original = vpx.Vp8Encoder.encode

    def counting(self: vpx.Vp8Encoder, *args: Any, **kwargs: Any) -> Any:
        encodes[id(self)] = encodes.get(id(self), 0) + 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(vpx.Vp8Encoder, "encode", counting)
    server = Server(codec)
    publisher = RTCPeerConnection()
    publisher.addTrack(MovingPicture())
    publisher.addTrack(AudioStreamTrack())
    prefer(publisher, "video", codec)
    await connect(publisher, server.publisher)
    await asyncio.wait_for(server.ready.wait(), 10)
    crowd = [Viewer() for _ in range(viewers)]
    for viewer in crowd:
        await server.view(viewer)
    await asyncio.sleep(3)
    result = {
        "frames": [len(v.frames) for v in crowd],
        "moving": [moving(v.frames) for v in crowd],
        "audio": [v.audio for v in crowd],
        "first_frame": [(v.first_frame_at or 1e9) - v.started for v in crowd],
        "encoders": len(encodes),
        "forwarded": server.fanouts["video"].frames,
        "viewers_before": len(server.fanouts["video"].viewers),
    }
    for viewer in crowd:
        await viewer.close()
    for pc in server.viewers:
        await pc.close()
    await asyncio.sleep(0.2)
    result["viewers_after"] = len(server.fanouts["video"].viewers)
    await publisher.close()
    await server.publisher.close()
    return result


def test_viewers_see_the_publisher_without_a_server_encode(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three viewers decode moving video within a second of joining and get audio; the only
    VP8 encoder in the process is the publisher's own (the server forwards, never encodes)."""
    result = run_async(scenario(3, monkeypatch))
    assert all(n > 40 for n in result["frames"]), result  # type: ignore[attr-defined]
    assert all(result["moving"]), result  # type: ignore[arg-type]
    assert all(n > 50 for n in result["audio"]), result  # type: ignore[attr-defined]
    assert all(s < 1.0 for s in result["first_frame"]), result  # type: ignore[attr-defined]
    assert result["encoders"] == 1, result
    assert result["viewers_before"] == 3 and result["viewers_after"] == 0


def test_h264_is_forwarded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """An H.264 publisher (what OBS sends): viewers decode its moving picture."""
    result = run_async(scenario(2, monkeypatch, codec="H264"))
    assert all(n > 40 for n in result["frames"]), result  # type: ignore[attr-defined]
    assert all(result["moving"]), result  # type: ignore[arg-type]


def test_keyframe_detection() -> None:
    assert forward.is_keyframe("VP8", b"\x10\x02\x00\x9d\x01\x2a")
    assert not forward.is_keyframe("VP8", b"\x11\x02\x00")
    assert forward.is_keyframe("H264", b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88")
    assert not forward.is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a")
    assert forward.is_keyframe("opus", b"\x00")
    assert fractions.Fraction(1, 90000) == forward.VIDEO_CLOCK


def test_a_move_to_a_layer_behind_keeps_the_viewers_timestamps_going_forward() -> None:
    """The low layer's keyframe after a move carries a timestamp the viewer already had
    from the original (it runs frames behind): the viewer gets it a tick after the last
    one (a receiver would join the two into one frame and never show the new layer), and
    so the frames after it until the layer's own timestamps are ahead; a moved-back
    viewer's replayed keyframe and frames since go the same way."""
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    key, delta = b"\x10\x02\x00\x9d\x01\x2a", b"\x11\x02\x00"

    async def scenario() -> list[tuple[str, int]]:
        high, low = forward.Fanout("video"), forward.Fanout("video")
        track = high.add("VP8")
        got: list[tuple[str, int]] = []

        def write(frame: forward.Frame) -> int:
            got.append((frame.data[:1].hex(), frame.timestamp))
            return 0

        track.write_with(write)
        high.publish(vp8, key, 3000)
        high.publish(vp8, delta, 6000)
        high.publish(vp8, delta, 9000)
        track.move_to(low)
        high.publish(vp8, delta, 12000)  # still on high until low's keyframe
        low.publish(vp8, key, 9000)  # the low layer's picture of 9000, made late
        low.publish(vp8, delta, 12000)
        high.publish(vp8, delta, 15000)  # not this viewer's any more
        low.publish(vp8, delta, 15000)
        track.move_to(high)
        high.publish(vp8, key, 30000)  # ahead of everything sent: no shift any more
        high.publish(vp8, delta, 33000)
        return got

    got = run_async(scenario())
    assert got[:4] == [("10", 3000), ("11", 6000), ("11", 9000), ("11", 12000)], got
    assert got[4:7] == [("10", 12001), ("11", 12002), ("11", 15000)], got  # on low
    replayed = [("10", 15001)] + [("11", 15001 + n) for n in range(1, 5)]
    assert got[7:] == [*replayed, ("10", 30000), ("11", 33000)], got


def test_a_hundred_viewers_come_and_go_and_nothing_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    """100 join/leave cycles through a room: peer connections, forwarded tracks and asyncio
    tasks return to where they started (nothing leaks per viewer)."""
    from service.live.rooms import Room

    async def run() -> dict[str, int]:
        publisher = RTCPeerConnection()
        publisher.addTrack(MovingPicture())
        publisher.addTrack(AudioStreamTrack())
        prefer(publisher, "video", "VP8")
        room = Room("s", RTCConfiguration(), max_viewers=10)
        await publisher.setLocalDescription(await publisher.createOffer())
        sdp = publisher.localDescription.sdp
        answer, _ = await room.publish(sdp)
        await publisher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for _ in range(200):  # until the publisher's first frames are in
            if room.fanouts and all(f.codec for f in room.fanouts.values()):
                break
            await asyncio.sleep(0.05)

        async def cycle() -> None:
            viewer = Viewer()
            prefer(viewer.pc, "video", "VP8")
            await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
            answer, resource = await room.view(viewer.pc.localDescription.sdp)
            await viewer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            await asyncio.sleep(0.05)
            await viewer.close()
            await room.stop_viewer(resource)

        for _ in range(5):  # warm up: lazily created things exist before counting
            await cycle()
        await asyncio.sleep(0.5)
        before = {"tasks": len(asyncio.all_tasks()), "viewers": len(room.viewers),
                  "tracks": sum(len(f.viewers) for f in room.fanouts.values())}
        for _ in range(100):
            await cycle()
        for _ in range(100):  # what is closing finishes (a leak never does): 10 s at most
            await asyncio.sleep(0.1)
            if len(asyncio.all_tasks()) <= before["tasks"] + 2:
                break
        after = {"tasks": len(asyncio.all_tasks()), "viewers": len(room.viewers),
                 "tracks": sum(len(f.viewers) for f in room.fanouts.values())}
        await room.close()
        await publisher.close()
        return {**{f"before_{k}": v for k, v in before.items()},
                **{f"after_{k}": v for k, v in after.items()}}

    counts = run_async(run())
    assert counts["after_viewers"] == counts["before_viewers"] == 0, counts
    assert counts["after_tracks"] == counts["before_tracks"] == 0, counts
    assert counts["after_tasks"] <= counts["before_tasks"] + 2, counts
