"""Codec negotiation is right by construction: every viewer is answered with the publisher's
codec and decodes its moving picture, or is refused (406) with the codec it needs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from service.live import codecs
from service.live.ice import use_host_addresses
from service.live.rooms import Room
from tests.live import run_async
from tests.live.test_forward import MovingPicture, Viewer, moving, prefer

OFFERS = {"VP8 first": ["VP8", "H264"], "H264 first": ["H264", "VP8"],
          "VP8 alone": ["VP8"], "H264 alone": ["H264"]}


@pytest.fixture(autouse=True)
def loopback() -> Iterator[None]:
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses([])


def offering(pc: RTCPeerConnection, names: list[str]) -> None:
    every = RTCRtpSender.getCapabilities("video").codecs
    ordered = [c for name in names for c in every if c.name == name]
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            transceiver.setCodecPreferences(ordered)


async def live_room(codec: str, size: tuple[int, int] = (320, 240)) -> tuple[
        Room, RTCPeerConnection]:
    publisher = RTCPeerConnection()
    publisher.addTrack(MovingPicture(*size))
    publisher.addTrack(AudioStreamTrack())
    prefer(publisher, "video", codec)
    room = Room("s", RTCConfiguration(), max_viewers=10)
    await publisher.setLocalDescription(await publisher.createOffer())
    answer, _ = await room.publish(publisher.localDescription.sdp)
    await publisher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    for _ in range(200):  # until the publisher's first frames are in
        if all(f.codec for f in room.fanouts.values()):
            break
        await asyncio.sleep(0.05)
    return room, publisher


async def matrix(codec: str) -> dict[str, object]:
    room, publisher = await live_room(codec)
    out: dict[str, object] = {}
    watching: dict[str, Viewer] = {}
    for label, names in OFFERS.items():
        viewer = Viewer()
        offering(viewer.pc, names)
        await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
        try:
            answer, _ = await room.view(viewer.pc.localDescription.sdp)
        except codecs.CodecNotOffered as refused:
            out[label] = (refused.status, refused.code, refused.params["codec"])
            await viewer.close()
            continue
        video = next(line for line in answer.splitlines() if line.startswith("a=rtpmap:")
                     and "/90000" in line and "rtx" not in line)
        out[label] = video.split()[1].split("/")[0]
        await viewer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        watching[label] = viewer
    await asyncio.sleep(3)
    for label, viewer in watching.items():
        out[f"{label} frames"] = len(viewer.frames)
        out[f"{label} moving"] = moving(viewer.frames)
        await viewer.close()
    await room.close()
    await publisher.close()
    return out


@pytest.mark.parametrize("codec", ["H264", "VP8"])
def test_every_viewer_gets_the_publishers_codec_or_a_clear_refusal(codec: str) -> None:
    """Viewers offering VP8 first, H.264 first, or one alone: those that offer the
    publisher's codec are answered with it (only it) and decode a moving picture; the others
    get 406 naming the codec the session sends."""
    other = "VP8" if codec == "H264" else "H264"
    out = run_async(matrix(codec))
    for label, names in OFFERS.items():
        if codec in names:
            assert out[label] == codec, out
            assert int(str(out[f"{label} frames"])) > 40 and out[f"{label} moving"], (label, out)
        else:
            assert out[label] == (406, "codec_not_offered", codec), out
    assert out[f"{other} alone"] == (406, "codec_not_offered", codec)


def test_a_guest_on_stage_publishes_in_the_hosts_codec() -> None:
    """The stage speaks the host's codec, so every viewer's second picture plays: a guest
    offering H.264 and VP8 to an H.264 host is answered H.264; one offering only VP8 is
    refused, naming H.264."""
    async def run() -> tuple[str, tuple[int, str, object]]:
        room, publisher = await live_room("H264")
        guest = RTCPeerConnection()
        guest.addTrack(MovingPicture())
        guest.addTrack(AudioStreamTrack())
        offering(guest, ["VP8", "H264"])
        await guest.setLocalDescription(await guest.createOffer())
        answer, _ = await room.publish(guest.localDescription.sdp, "guest")
        chosen = {line.split()[1] for line in answer.splitlines()
                  if line.startswith("a=rtpmap:") and "/90000" in line}
        await room.stop_publisher("guest")
        await guest.close()
        only_vp8 = RTCPeerConnection()
        only_vp8.addTrack(MovingPicture())
        offering(only_vp8, ["VP8"])
        await only_vp8.setLocalDescription(await only_vp8.createOffer())
        try:
            await room.publish(only_vp8.localDescription.sdp, "guest")
            refused: tuple[int, str, object] = (0, "", None)
        except codecs.CodecNotOffered as exc:
            refused = (exc.status, exc.code, exc.params["codec"])
        await only_vp8.close()
        await room.close()
        await publisher.close()
        return ",".join(sorted(chosen)), refused

    chosen, refused = run_async(run())
    assert chosen == "H264/90000", chosen
    assert refused == (406, "codec_not_offered", "H264")
