"""Keyframe requests: they go to the publisher's media SSRC (never its RTX one), are pooled
toward the publisher, and a struggling viewer never forces keyframes on everyone."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtcpPsfbPacket

from service.live import forward
from service.live.ice import use_host_addresses
from tests.live import run_async
from tests.live.netviewer import count_keyframes
from tests.live.test_codecs import live_room
from tests.live.test_forward import Viewer, prefer


@pytest.fixture(autouse=True)
def loopback() -> Iterator[None]:
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses([])


class CountingViewer(Viewer):
    """Counts the keyframes it decodes, and when each came."""

    def __init__(self) -> None:
        super().__init__()
        self.keyframes: list[float] = []
        video = next(t for t in self.pc.getTransceivers() if t.kind == "video")
        count_keyframes(video.receiver, lambda: self.keyframes.append(time.monotonic()))

    async def _read(self, track: Any) -> None:
        try:
            while True:
                await track.recv()
                if track.kind == "video":
                    if self.first_frame_at is None:
                        self.first_frame_at = time.monotonic()
                    self.frames.append(b"")
        except MediaStreamError:
            return


def test_a_struggling_viewer_never_forces_keyframes_on_everyone() -> None:
    """One viewer reports picture loss ten times a second for 6 s: the publisher is asked
    for a keyframe at most once per 5 s, every request names its media SSRC, the clean viewer
    beside it keeps its frame rate with at most two keyframes, and a viewer joining then
    still sees its first frame within a second."""
    async def run() -> dict[str, Any]:
        room, publisher = await live_room("VP8")
        sender = next(t.sender for t in publisher.getTransceivers() if t.kind == "video")
        asked: list[int] = []
        handle = sender._handle_rtcp_packet

        async def counting(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (1, 4):
                asked.append(packet.media_ssrc)
            await handle(packet)

        sender._handle_rtcp_packet = counting  # type: ignore[method-assign]
        clean, struggling = CountingViewer(), CountingViewer()
        for viewer in (clean, struggling):
            prefer(viewer.pc, "video", "VP8")
            await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
            answer, _ = await room.view(viewer.pc.localDescription.sdp)
            await viewer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.sleep(2.5)  # both started
        asked.clear()
        frames_before, keys_before = len(clean.frames), len(clean.keyframes)
        receiver = next(t.receiver for t in struggling.pc.getTransceivers()
                        if t.kind == "video")
        media = receiver.getSynchronizationSources()[0].source
        started = time.monotonic()
        while time.monotonic() - started < 6.0:
            await receiver._send_rtcp_pli(media)
            await asyncio.sleep(0.1)
        out: dict[str, Any] = {
            "asked": list(asked), "media_ssrc": sender._ssrc, "rtx_ssrc": sender._rtx_ssrc,
            "clean_fps": (len(clean.frames) - frames_before) / 6.0,
            "clean_keyframes": len(clean.keyframes) - keys_before,
            "clean_started_on_keyframe": keys_before >= 1}
        late = CountingViewer()
        prefer(late.pc, "video", "VP8")
        await late.pc.setLocalDescription(await late.pc.createOffer())
        answer, _ = await room.view(late.pc.localDescription.sdp)
        await late.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.sleep(2.0)
        out["late_first_frame"] = (late.first_frame_at or 1e9) - late.started
        for viewer in (clean, struggling, late):
            await viewer.close()
        await room.close()
        await publisher.close()
        return out

    out = run_async(run())
    assert 1 <= len(out["asked"]) <= 2, out
    assert set(out["asked"]) == {out["media_ssrc"]}, out
    assert out["clean_started_on_keyframe"] and out["clean_keyframes"] <= 2, out
    assert out["clean_fps"] > 25, out
    assert out["late_first_frame"] < 1.0, out


def test_requests_are_pooled_per_publisher() -> None:
    """Many viewers starting together: one request toward the publisher per second."""
    async def run() -> int:
        fanout = forward.Fanout("video")
        sent: list[float] = []

        async def request() -> None:
            sent.append(time.monotonic())

        fanout._request_keyframe = request
        tracks = [fanout.add() for _ in range(20)]
        for _ in range(20):
            for track in tracks:
                track.restart()
            await asyncio.sleep(0.1)
        gaps = [b - a for a, b in itertools.pairwise(sent)]
        assert all(gap >= forward.START_SECONDS - 0.05 for gap in gaps), gaps
        return len(sent)

    assert 2 <= run_async(run()) <= 3
