"""DTLS with every stack: Kumpul answers as the DTLS server (`a=setup:passive`) with its
ECDSA certificate, so a publisher with an RSA certificate (GStreamer 1.22's webrtcbin,
Debian 12) completes the handshake, and viewers decode what it sends."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from service.live.dtls import as_dtls_server
from tests.conftest import ServerProcess
from tests.live import run_async, test_signalling
from tests.live.test_forward import Viewer
from tests.live.test_signalling import SDP, schedule
from tests.remote import member_of_new_community

live_server = test_signalling.live_server  # the same server process fixture
GST_WHIP = Path(__file__).with_name("gst_whip.py")
DEBIAN_PYTHON = "/usr/bin/python3"

OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=setup:{}\r\na=mid:0\r\n"
ANSWER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=setup:active\r\na=mid:0\r\n"


@pytest.mark.parametrize(("offered", "aiortc", "answered"), [
    ("actpass", "active", "passive"), ("active", "passive", "passive"),
    ("passive", "active", "active")])
def test_the_answer_takes_the_dtls_server_side_when_the_offer_lets_it(
        offered: str, aiortc: str, answered: str) -> None:
    """actpass: Kumpul is the server (passive). An offer that insists on a side keeps what
    aiortc answered."""
    made = as_dtls_server(OFFER.format(offered), ANSWER.replace("active", aiortc))
    assert f"a=setup:{answered}\r\n" in made
    assert made.count("a=setup:") == 1


class Watcher(Viewer):
    """An aiortc viewer that keeps the size and a digest of every decoded picture."""

    def __init__(self) -> None:
        super().__init__()
        self.pictures: list[tuple[int, int, str]] = []

    async def _read(self, track: object) -> None:
        try:
            while True:
                frame = await track.recv()  # type: ignore[attr-defined]
                if getattr(track, "kind", "") == "video":
                    gray = bytes(frame.reformat(format="gray").planes[0])
                    self.pictures.append((frame.width, frame.height,
                                          hashlib.sha1(gray).hexdigest()))
                else:
                    self.audio += 1
        except MediaStreamError:
            return


def test_a_gstreamer_webrtcbin_publisher_is_watched(live_server: ServerProcess) -> None:
    """GStreamer 1.22's webrtcbin (RSA certificate) publishes over WHIP from Debian's own
    packages; DTLS completes and an aiortc viewer decodes its moving 320x240 picture."""
    if not (shutil.which("gst-inspect-1.0") and Path(DEBIAN_PYTHON).exists()):
        pytest.fail("GStreamer is missing: scripts/bootstrap --dev installs Debian's "
                    "gstreamer1.0-plugins-bad, gstreamer1.0-nice and python3-gi")
    host = member_of_new_community(live_server, role="host")
    live = schedule(live_server, host)
    gst = subprocess.Popen([DEBIAN_PYTHON, str(GST_WHIP), live["whip_url"],
                            live["publish_token"], "8", "127.0.0.1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert gst.stdout is not None
        first = gst.stdout.readline().strip()
        assert first == "connected", first + gst.stdout.read()

        async def watch() -> Watcher:
            viewer = Watcher()
            await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
            async with httpx.AsyncClient(timeout=20) as client:
                answer = await client.post(live["whep_url"], content=viewer.pc.localDescription.sdp,
                                           headers={**SDP, **host.auth})
                assert answer.status_code == 201, answer.text
                assert "a=setup:passive" in answer.text
                await viewer.pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
                await asyncio.sleep(4)
                await viewer.close()
            return viewer

        viewer = run_async(watch())
        rest = gst.communicate(timeout=30)[0]
        assert gst.returncode == 0, rest
    finally:
        if gst.poll() is None:
            gst.kill()
            gst.wait()
    pictures = viewer.pictures
    assert len(pictures) >= 30, len(pictures)  # 15 fps for 4 s, from the first keyframe
    assert {(w, h) for w, h, _ in pictures} == {(320, 240)}
    assert len({digest for _, _, digest in pictures}) >= 20  # the ball moves
    assert viewer.audio > 50
