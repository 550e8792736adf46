"""Adaptive quality per viewer: the decisions (down on loss, probing up with back-off, never
below sound), and the layers over the wire (the room's one low-layer encoder, audio only,
back to the original)."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from service.live.ice import use_host_addresses
from service.live.quality import (
    JITTER_RISE,
    PROBE_CAP,
    PROBE_SECONDS,
    RTT_RISE,
    WAIT_SECONDS,
    Layer,
    Padding,
    Quality,
)
from tests.live import run_async
from tests.live.test_codecs import live_room
from tests.live.test_forward import Viewer, prefer
from tests.live.test_recovery import until
from tests.live.test_writer import Tapped, payload_types, prefer_with_rtx


def run(quality: Quality, seconds: float, loss: float | Callable[[Quality], float],
        start: float, step: float = 1.0) -> tuple[float, list[tuple[float, Layer]]]:
    """Reports every `step` seconds; `loss` may depend on the state (a probe's padding)."""
    moves = []
    now = start
    while now < start + seconds:
        moved = quality.report(now, loss(quality) if callable(loss) else loss)
        if moved is not None:
            moves.append((now, moved))
        now += step
    return now, moves


def test_loss_moves_a_viewer_down_and_a_clear_link_brings_it_back() -> None:
    quality = Quality()
    now, moves = run(quality, 10, 0.30, 0.0)  # a link far too slow
    assert [layer for _, layer in moves] == [Layer.low, Layer.audio]
    assert quality.layer == Layer.audio  # never dropped: it still hears the host
    cleared = now
    now, moves = run(quality, 30, 0.0, now)
    assert [layer for _, layer in moves] == [Layer.low, Layer.high]  # each after a probe
    back = next(t for t, layer in moves if layer == Layer.high)
    assert back - cleared <= 20.0, moves


def test_a_viewer_on_low_whose_link_clears_is_on_high_within_10_s() -> None:
    """However its probes had backed off while the link carried only the low layer."""
    quality = Quality(layer=Layer.low)
    now, moves = run(quality, 60, lambda q: 0.25 if q.probing else 0.0, 0.0)
    assert moves == [] and quality.probe_wait[Layer.high] == PROBE_CAP[Layer.high]
    for offset in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):  # wherever in its cycle
        probe = copy.deepcopy(quality)
        cleared, _ = run(probe, offset, lambda q: 0.25 if q.probing else 0.0, now)
        _, moves = run(probe, 30, 0.0, cleared)
        assert moves and moves[0][1] == Layer.high and moves[0][0] - cleared <= 10.0, (
            offset, moves)


def test_a_link_that_carries_only_the_low_layer_keeps_its_picture() -> None:
    """Probes up are padding, not pictures: when they fail the viewer never leaves low, and
    they back off (4 s toward high: a failed probe costs padding, not a frozen picture,
    `test_a_probes_padding_rides_right_behind_the_picture`)."""
    quality = Quality()
    quality.report(0.0, 0.3)
    assert quality.report(1.0, 0.3) == Layer.low
    now, probes, moves = 2.0, [], []
    while now < 62.0:
        was = quality.probing
        moved = quality.report(now, 0.25 if quality.probing else 0.0)
        if moved is not None:
            moves.append(moved)
        if quality.probing is not None and was is None:
            probes.append(now)
        now += 1.0
    assert moves == [] and quality.layer == Layer.low, moves
    assert probes[0] - 1.0 >= WAIT_SECONDS, probes
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert all(gap >= PROBE_CAP[Layer.high] for gap in gaps), probes  # backed off
    assert all(gap <= PROBE_CAP[Layer.high] + 5 for gap in gaps), probes  # still trying
    assert len(probes) <= 60 / PROBE_CAP[Layer.high]


def probing_up() -> Quality:
    """A viewer on the low layer after 4 s of clean reports (round trips 20 ms, the
    sound's jitter 1 ms): its probe toward high has just begun."""
    quality = Quality(layer=Layer.low)
    for t in range(0, 5):
        quality.round_trip(float(t), 0.02)
        quality.sound_jitter(float(t), 0.001)
        quality.report(float(t), 0.0)
    assert quality.probing == Layer.high
    return quality


def test_lost_padding_ends_a_probe() -> None:
    """A link that cannot carry a probe drops its padding (it rides behind the picture, so
    the tail drop takes it first): that loss, on the padding's own stream, fails the probe
    though the picture lost nothing and the round trip has not caught up yet. A little of
    it lost only keeps a report from counting; for long, it fails the probe too."""
    quality = probing_up()
    assert quality.report(5.0, 0.0, padding_loss=0.0) is None
    assert quality.probing == Layer.high  # padding that all came says nothing
    assert quality.report(5.6, 0.0, padding_loss=0.05) is None  # a little: no proof ...
    assert quality.probing == Layer.high  # ... (a player behind) and no failure either
    assert quality.report(5.8, 0.0, padding_loss=0.15) is None
    assert quality.probing is None and quality.layer == Layer.low
    assert quality.probe_wait[Layer.high] == min(2 * WAIT_SECONDS, PROBE_CAP[Layer.high])
    # not probing, lost padding (late copies of an earlier probe) moves nobody down
    assert quality.report(9.0, 0.0, padding_loss=0.5) is None and quality.layer == Layer.low


def test_the_sounds_growing_jitter_ends_a_probe() -> None:
    """A queue growing at the link's bottleneck delays each of the sound's packets a little
    more than the one before: its jitter rising over its recent minimum fails a probe a
    report before the round trip (measured from an older sender report) or any loss does."""
    quality = probing_up()
    quality.sound_jitter(4.6, 0.001 + JITTER_RISE / 2)  # a little: the probe goes on
    assert quality.report(4.7, 0.0) is None and quality.probing == Layer.high
    quality.sound_jitter(5.5, 0.002 + JITTER_RISE)
    assert quality.report(5.6, 0.0) is None
    assert quality.probing is None and quality.layer == Layer.low


def test_a_nack_or_a_growing_round_trip_ends_a_probe_at_once() -> None:
    quality = probing_up()
    quality.nack(4.5)
    assert quality.probing is None and quality.layer == Layer.low
    assert quality.probe_wait[Layer.high] == min(2 * WAIT_SECONDS, PROBE_CAP[Layer.high])
    now = 6.0
    while quality.probing is None:
        quality.round_trip(now, 0.02)
        quality.report(now, 0.0)
        now += 1.0
    quality.round_trip(now, 0.02 + RTT_RISE + 0.05)  # a queue builds behind the padding
    assert quality.report(now, 0.0) is None
    assert quality.probing is None and quality.layer == Layer.low


def test_a_probe_from_sound_only_runs_longer_and_needs_two_reports() -> None:
    """Toward the low layer a probe lasts `PROBE_SECONDS[low]` and needs two reports: a
    slow link's queue fills slowly, and the round trip its second report measures ends it."""
    def probing(rtts: list[float]) -> Quality:
        quality = Quality(layer=Layer.audio)
        now = 0.0
        while True:
            quality.round_trip(now, 0.05)
            quality.report(now, 0.0)
            if quality.probing is not None:  # a report a second from the probe's start
                break
            now += 1.0
        for rtt in rtts:
            now += 1.0
            quality.round_trip(now, rtt)
            quality.report(now, 0.0)
        return quality

    assert PROBE_SECONDS[Layer.low] > PROBE_SECONDS[Layer.high]
    assert probing([0.05]).probing == Layer.low  # one report: not yet
    assert probing([0.05, 0.05]).probing == Layer.low  # two, 2 s in: not yet
    assert probing([0.05, 0.05, 0.05]).layer == Layer.low  # clean for 3 s: up
    failed = probing([0.05, 0.05, 0.05 + RTT_RISE + 0.05])  # the queue grew: stay on sound
    assert failed.layer == Layer.audio and failed.probing is None


def test_a_probe_ends_when_the_players_remb_falls() -> None:
    """A player's REMB climbs with a probe's padding and falls once its link queues it (a
    slow link's burst allowance can hide the queue from receiver reports' round trips)."""
    quality = Quality(layer=Layer.audio)
    now = 0.0
    while quality.probing is None:
        quality.report(now, 0.0, remb=200_000)
        now += 1.0
    quality.report(now, 0.0, remb=770_000)
    assert quality.probing == Layer.low
    quality.report(now + 1.0, 0.0, remb=210_000)
    assert quality.probing is None and quality.layer == Layer.audio


def test_a_low_remb_moves_off_the_original_only_and_odd_round_trips_are_ignored() -> None:
    """A player's REMB collapses after congestion (a failed probe's too): on the original it
    moves the viewer down, on the low layer only loss or delay may take the picture."""
    quality = Quality()
    quality.report(0.0, 0.0, remb=100_000, layer_bps=1_000_000)
    assert quality.report(1.0, 0.0, remb=100_000, layer_bps=1_000_000) == Layer.low
    assert quality.choose(Layer.low, 2.0) is None  # stay on low: no probes in the way
    for t in range(3, 23):
        assert quality.report(float(t), 0.0, remb=50_000, layer_bps=300_000) is None
    assert quality.layer == Layer.low
    quality.round_trip(30.0, -0.2)  # a negative round trip is no baseline
    quality.round_trip(31.0, 0.05)
    assert not quality._rising()


def test_moderate_loss_holds_and_a_choice_is_a_ceiling() -> None:
    quality = Quality()
    _, moves = run(quality, 20, 0.03, 0.0)
    assert moves == [] and quality.layer == Layer.high
    assert quality.choose(Layer.low, 20.0) == Layer.low
    _, moves = run(quality, 30, 0.0, 21.0)
    assert moves == [] and quality.probing is None  # "save data": never above low
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


def test_a_probe_pads_a_viewer_without_touching_its_picture(loopback: None) -> None:
    """Padding at 400 kbit/s for 2 s reaches the viewer as packets sent again: the count is
    right, its pictures keep coming at the publisher's rate, and its player asks for no
    keyframe (padding stays within its jitter buffer's reach)."""
    async def scenario() -> dict[str, Any]:
        room, publisher = await live_room("VP8", size=(640, 480))
        viewer = Viewer()
        prefer(viewer.pc, "video", "VP8")
        await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
        answer, resource = await room.view(viewer.pc.localDescription.sdp)
        await viewer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await until(lambda: len(viewer.frames) > 10, 10)
        await asyncio.sleep(1.0)
        padding = Padding(room.follows[resource].padding.sender)  # the viewer's video sender
        requests, frames = room.fanouts["video"].requests, len(viewer.frames)
        padding.start(400_000, ramp=0.0)
        await asyncio.sleep(2.0)
        padding.stop()
        out = {"padded": padding.sent_bytes, "frames": len(viewer.frames) - frames,
               "requests": room.fanouts["video"].requests - requests}
        await viewer.close()
        await room.close()
        await publisher.close()
        return out

    out = run_async(scenario())
    assert 0.7 * 100_000 <= out["padded"] <= 1.2 * 100_000, out  # 400 kbit/s for 2 s
    assert out["frames"] >= 30, out  # the picture went on
    assert out["requests"] == 0, out  # and the player never lost its place


async def padded(ceiling: Layer) -> dict[str, Any]:
    """A viewer watching (ceiling high) or hearing only (ceiling audio) gets a probe's
    padding at 400 kbit/s for 2 s; what arrives, in order."""
    room, publisher = await live_room("VP8", size=(640, 480))
    viewer = Tapped()
    prefer_with_rtx(viewer.pc)
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
    answer, resource = await room.view(viewer.pc.localDescription.sdp)
    video_pt, rtx_pt = payload_types(answer)
    viewer.lossy(video_pt, rtx_pt, drop=False)
    await viewer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await until(lambda: len(viewer.received["video"]) > 10, 10)
    follow = room.follows[resource]
    follow.choose(ceiling)
    await asyncio.sleep(1.0)
    padding = Padding(follow.padding.sender, follow.padding.sound)
    begun = len(viewer.order)
    padding.start(400_000, ramp=0.0)
    await asyncio.sleep(2.0)
    padding.stop()
    await asyncio.sleep(0.3)
    out = {"padded": padding.sent_bytes, "order": viewer.order[begun:],
           "video_pt": video_pt, "rtx_pt": rtx_pt}
    await viewer.pc.close()
    await room.close()
    await publisher.close()
    return out


@pytest.mark.parametrize("ceiling", [Layer.high, Layer.audio])
def test_a_probes_padding_rides_right_behind_the_picture(
        loopback: None, ceiling: Layer) -> None:
    """A probe's padding leaves right behind each picture (`RtpWriter.probe`), or behind
    the sound for a viewer who hears only that: on a link the probe overflows, the tail
    drop takes the padding that came last and the next picture finds the room the link
    drained since (padding sent between pictures, on its own clock, took pictures with
    it). At the probe's rate, nothing more."""
    out = run_async(padded(ceiling))
    assert 0.7 * 100_000 <= out["padded"] <= 1.2 * 100_000, out["padded"]
    lead = (lambda pt: pt == out["video_pt"]) if ceiling == Layer.high else \
        (lambda pt: pt not in (out["video_pt"], out["rtx_pt"]))
    behind = near = padding = 0
    last: tuple[float, int] | None = None  # the last datagram that was not padding
    for at, pt in out["order"]:
        if pt != out["rtx_pt"]:
            last = (at, pt)
            continue
        padding += 1
        if last is not None and lead(last[1]):
            behind += 1
            near += at - last[0] < 0.005
    assert padding > 50, padding
    assert behind >= 0.9 * padding and near >= 0.9 * padding, (padding, behind, near)


def test_a_probe_whose_padding_keeps_losing_a_little_neither_holds_nor_lasts() -> None:
    quality = probing_up()
    now = 4.0
    while quality.probing is not None and now < 20.0:
        now += 0.5
        assert quality.report(now, 0.0, padding_loss=0.05) is None
    assert quality.layer == Layer.low and quality.probing is None
    assert now <= 4.0 + 2 * PROBE_SECONDS[Layer.high] + 0.5, now
