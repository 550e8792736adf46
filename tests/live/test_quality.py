"""Adaptive quality per viewer: the decisions (down on loss, probing up with back-off, never
below sound), and the layers over the wire (the room's one low-layer encoder, audio only,
back to the original)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from service.live.ice import use_host_addresses
from service.live.quality import PROBE_CAP, PROBE_SECONDS, Layer, Quality
from tests.live import run_async
from tests.live.test_codecs import live_room
from tests.live.test_forward import Viewer, prefer
from tests.live.test_recovery import until


def run(quality: Quality, seconds: float, loss: float, start: float,
        step: float = 1.0) -> tuple[float, list[tuple[float, Layer]]]:
    moves = []
    now = start
    while now < start + seconds:
        moved = quality.report(now, loss)
        if moved is not None:
            moves.append((now, moved))
        now += step
    return now, moves


def test_loss_moves_a_viewer_down_and_a_clear_link_brings_it_back_within_10_s() -> None:
    quality = Quality()
    now, moves = run(quality, 10, 0.30, 0.0)  # a link far too slow
    assert [layer for _, layer in moves] == [Layer.low, Layer.audio]
    assert quality.layer == Layer.audio  # never dropped: it still hears the host
    cleared = now
    now, moves = run(quality, 30, 0.0, now)
    back = next(t for t, layer in moves if layer == Layer.high)
    assert back - cleared <= 10.0, moves


def test_a_link_that_carries_only_the_low_layer_settles_there_probing_less_and_less() -> None:
    """Probes up fail and back off (6 s toward high: a few keyframe requests a minute);
    the viewer stays on low."""
    quality = Quality()
    now, probes = 0.0, []
    quality.report(now, 0.3)
    assert quality.report(1.0, 0.3) == Layer.low
    now = 2.0
    while now < 62.0:
        loss = 0.25 if quality.layer == Layer.high else 0.0
        moved = quality.report(now, loss)
        if moved == Layer.high:
            probes.append(now)
        now += 1.0
    assert probes[0] - 1.0 >= PROBE_SECONDS, probes
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert all(gap >= PROBE_CAP[Layer.high] for gap in gaps), probes  # backed off
    assert all(gap <= PROBE_CAP[Layer.high] + 5 for gap in gaps), probes  # still trying
    assert len(probes) <= 6 and quality.layer == Layer.low


def test_moderate_loss_holds_and_a_choice_is_a_ceiling() -> None:
    quality = Quality()
    _, moves = run(quality, 20, 0.03, 0.0)
    assert moves == [] and quality.layer == Layer.high
    assert quality.choose(Layer.low, 20.0) == Layer.low
    _, moves = run(quality, 30, 0.0, 21.0)
    assert moves == []  # "save data": never above low
    assert quality.choose(Layer.high, 60.0) == Layer.high


@pytest.fixture
def loopback() -> Iterator[None]:
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses([])


class SizedViewer(Viewer):
    """Keeps the decoded pictures' heights."""

    def __init__(self) -> None:
        super().__init__()
        self.heights: list[int] = []

    async def _read(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.heights.append(frame.height)
                else:
                    self.audio += 1
        except MediaStreamError:
            return


def test_one_low_layer_per_room_audio_only_and_back(loopback: None) -> None:
    """Two viewers move to the low layer: both decode ~360p pictures from one encoder; one
    goes audio only (sound keeps coming, pictures stop); both return to the original."""
    async def scenario() -> dict[str, Any]:
        room, publisher = await live_room("VP8", size=(640, 480))
        crowd = [SizedViewer(), SizedViewer()]
        resources = []
        for viewer in crowd:
            prefer(viewer.pc, "video", "VP8")
            await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
            answer, resource = await room.view(viewer.pc.localDescription.sdp)
            await viewer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            resources.append(resource)
        await asyncio.sleep(2.5)
        out: dict[str, Any] = {"high": [set(v.heights[-10:]) for v in crowd]}
        fed = room.fanouts["video"].frames
        for resource in resources:
            room.choose_quality(resource, Layer.low)
        await until(lambda: all(set(v.heights[-5:]) == {360} for v in crowd), 15)
        await asyncio.sleep(1.0)
        out["low"] = [set(v.heights[-5:]) for v in crowd]
        out["encoders"] = 1 if room.low is not None else 0
        out["encoded"] = room.low.encoded if room.low else 0
        out["skipped"] = room.low.skipped if room.low else 0
        out["fed"] = room.fanouts["video"].frames - fed
        room.choose_quality(resources[0], Layer.audio)
        await asyncio.sleep(1.0)
        pictures, sound = len(crowd[0].heights), crowd[0].audio
        await asyncio.sleep(2.0)
        out["audio_only"] = (len(crowd[0].heights) - pictures, crowd[0].audio - sound)
        out["quality"] = room.quality(resources[0])
        for resource in resources:
            room.choose_quality(resource, Layer.high)
        await until(lambda: all(set(v.heights[-5:]) == {480} for v in crowd), 8)
        await asyncio.sleep(1.0)
        out["back"] = [set(v.heights[-5:]) for v in crowd]
        out["low_running"] = room.low.running if room.low else None
        out["low_viewers"] = len(room.low.fanout.viewers) if room.low else None
        for viewer in crowd:
            await viewer.close()
        await room.close()
        await publisher.close()
        return out

    out = run_async(scenario())
    assert out["high"] == [{480}, {480}], out
    assert out["low"] == [{360}, {360}], out
    assert out["encoders"] == 1 and out["encoded"] > 10, out  # one encoder for both
    pictures, sound = out["audio_only"]
    assert pictures <= 2 and sound > 50, out
    assert out["quality"] == {"layer": "audio", "ceiling": "audio"}, out
    assert out["back"] == [{480}, {480}], out
    assert out["low_running"] is True, out  # it lingers a while for viewers coming back
