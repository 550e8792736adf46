"""Live sessions in the field, in Debian's Chromium: an H.264 encoder (what OBS sends) plays
on Kumpul's own watch page; a Chromium publisher that keeps RTX gets its viewers their first
frame fast; the watch page tells when the host stops and comes back by itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServerProcess
from tests.e2e.test_live import FRAMES, live_server, person
from tests.live.encoder import Encoder
from tests.remote import RemoteMember, member_of_new_community

pytestmark = pytest.mark.e2e  # drives Debian's Chromium
__all__ = ["live_server"]


def scheduled(server: ServerProcess) -> tuple[RemoteMember, dict[str, Any]]:
    host = member_of_new_community(server, role="host")
    made = httpx.post(f"{server.url}/api/communities/{host.slug}/live", headers=host.auth,
                      json={"title": "Trail talk"})
    assert made.status_code == 201, made.text
    return host, made.json()


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.2)


def frames(page: Page, video: str = "host-video") -> int:
    return int(page.evaluate(FRAMES, video))


def test_an_h264_encoder_plays_on_the_watch_page(live_server: ServerProcess,
                                                 browser: Browser) -> None:
    """OBS's default codec: the watch page offers what the session sends, the answer
    carries H.264, and Chromium decodes a moving picture."""
    host, live = scheduled(live_server)
    with Encoder(live["whip_url"], live["publish_token"], "H264"):
        _, page = person(browser, live_server, "member@example.com", phone=True)
        page.goto(f"{live_server.url}/c/{host.slug}/live/{live['id']}")
        expect(page.locator("#waiting")).to_be_hidden(timeout=15_000)
        assert frames(page) > 20
        listed = httpx.get(f"{live_server.url}/api/communities/{host.slug}/live",
                           headers=host.auth).json()["sessions"][0]
        assert listed["video_codec"] == "H264", listed


PUBLISH_KEEPING_RTX = """async ([url, token]) => {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: 1280, height: 720 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 2000);
  });
  const offered = pc.localDescription.sdp;
  const response = await fetch(url, { method: "POST", body: offered,
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` } });
  const answer = await response.text();
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  window.publisher = pc;
  return { status: response.status, rtx: /a=rtpmap:\\d+ rtx\\//.test(answer) };
}"""


def test_a_chromium_publisher_keeping_rtx_gives_viewers_a_fast_first_frame(
        live_server: ServerProcess, browser: Browser) -> None:
    """A third-party browser publisher (RTX negotiated, as Chromium does by default): each of
    three viewers joining one after another decodes its first frame within a second
    (keyframe requests reach the media SSRC, not the RTX one)."""
    from tests.live import run_async
    from tests.live.test_signalling import watch

    host, live = scheduled(live_server)
    context = browser.new_context()
    context.grant_permissions(["camera", "microphone"])
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    made = page.evaluate(PUBLISH_KEEPING_RTX, [live["whip_url"], live["publish_token"]])
    assert made == {"status": 201, "rtx": True}, made

    async def viewers() -> list[float]:
        import asyncio

        firsts = []
        async with httpx.AsyncClient(timeout=20) as client:
            await asyncio.sleep(3.0)  # the publisher is up and probing
            for _ in range(3):
                viewer, answer = await watch(client, live["whep_url"], host.token)
                assert answer.status_code == 201, answer.text
                await asyncio.sleep(2.5)
                firsts.append((viewer.first_frame_at or 1e9) - viewer.started)
                await viewer.close()
        return firsts

    firsts = run_async(viewers())
    assert all(first <= 1.0 for first in firsts), firsts


def test_the_watch_page_follows_the_host_away_and_back_and_reconnects(
        live_server: ServerProcess, browser: Browser) -> None:
    """The host's encoder stops: the watch page says so and its picture comes back by itself
    when the host publishes again. The server goes away (a crash, a restart): the page
    shows it is reconnecting, and plays again once the host is back, without a reload."""
    host, live = scheduled(live_server)
    whip, key = live["whip_url"], live["publish_token"]
    _, page = person(browser, live_server, "member@example.com", phone=True)
    with Encoder(whip, key, "VP8") as encoder:
        page.goto(f"{live_server.url}/c/{host.slug}/live/{live['id']}")
        expect(page.locator("#waiting")).to_be_hidden(timeout=15_000)
        assert frames(page) > 20
        encoder.stop()
        expect(page.locator("#waiting")).to_contain_text("stopped sending", timeout=5_000)
        assert frames(page) < 5
    with Encoder(whip, key, "VP8") as encoder:
        expect(page.locator("#waiting")).to_be_hidden(timeout=10_000)
        page.wait_for_timeout(1500)
        assert frames(page) > 20
        live_server.kill()
        encoder.stop(delete=False)
    live_server.start()
    expect(page.locator("#connection")).to_have_text("Reconnecting…", timeout=15_000)
    with Encoder(whip, key, "VP8"):
        expect(page.locator("#connection")).to_be_hidden(timeout=20_000)
        page.wait_for_timeout(1500)
        assert frames(page) > 20


TARGET_BITRATE = """async () => {
  const stats = await window.publisher.getStats();
  for (const s of stats.values()) {
    if (s.type === "outbound-rtp" && s.kind === "video") return s.targetBitrate || 0;
  }
  return 0;
}"""


def test_a_720p_browser_publisher_is_let_up_to_its_rate(live_server: ServerProcess,
                                                       browser: Browser) -> None:
    """A 720p Chromium publisher on a clean link targets at least 1.5 Mbps: the server's
    REMB follows its own receive path, and a viewer reporting a tiny REMB of its own changes
    nothing for the publisher."""
    from tests.live import run_async
    from tests.live.test_signalling import watch

    host, live = scheduled(live_server)
    context = browser.new_context()
    context.grant_permissions(["camera", "microphone"])
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    made = page.evaluate(PUBLISH_KEEPING_RTX, [live["whip_url"], live["publish_token"]])
    assert made["status"] == 201, made

    async def slow_viewer() -> None:
        import asyncio

        from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

        async with httpx.AsyncClient(timeout=20) as client:
            await asyncio.sleep(2.0)
            viewer, answer = await watch(client, live["whep_url"], host.token)
            assert answer.status_code == 201, answer.text
            receiver = next(t.receiver for t in viewer.pc.getTransceivers()
                            if t.kind == "video")
            for _ in range(16):  # "100 kbit/s is all I take", twice a second
                await asyncio.sleep(0.5)
                sources = [s.source for s in receiver.getSynchronizationSources()]
                if sources:
                    await receiver._send_rtcp(RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP, ssrc=1234, media_ssrc=0,
                        fci=pack_remb_fci(100_000, sources)))
            await viewer.close()

    run_async(slow_viewer())
    targets = []
    for _ in range(6):
        page.wait_for_timeout(500)
        targets.append(int(page.evaluate(TARGET_BITRATE)))
    assert min(targets) >= 1_500_000, targets


@pytest.mark.parametrize(("preset", "height"), [("720", 720), ("480", 480)])
def test_the_studio_offers_a_quality_preset(live_server: ServerProcess, browser: Browser,
                                            preset: str, height: int) -> None:
    """The host picks 480p or 720p: the camera is opened at that size and a viewer's
    picture is no larger."""
    host, live = scheduled(live_server)
    _, studio = person(browser, live_server, "member@example.com", phone=False)
    studio.goto(f"{live_server.url}/c/{host.slug}/live/{live['id']}/studio")
    studio.get_by_label("Quality").select_option(preset)
    studio.get_by_role("button", name="Turn on camera").click()
    studio.get_by_role("button", name="Go live").click()
    expect(studio.locator("#live-state")).to_have_text("live now", timeout=15_000)
    captured = studio.evaluate("""() => document.getElementById("preview").srcObject
        .getVideoTracks()[0].getSettings().height""")
    assert captured == height
    _, page = person(browser, live_server, "member@example.com", phone=True)
    page.goto(f"{live_server.url}/c/{host.slug}/live/{live['id']}")
    expect(page.locator("#waiting")).to_be_hidden(timeout=15_000)
    assert frames(page) > 20
    shown = page.evaluate("() => document.getElementById('host-video').videoHeight")
    assert 0 < shown <= height


def test_the_watch_page_shows_the_quality_and_offers_save_data_and_audio_only(
        live_server: ServerProcess, browser: Browser) -> None:
    """The viewer sees which quality it gets and may choose: "Save data" brings the room's
    ~360p layer, "Audio only" stops the picture (the sound goes on), "Automatic" brings the
    original back."""
    host, live = scheduled(live_server)
    with Encoder(live["whip_url"], live["publish_token"], "VP8", size=(640, 480)):
        _, page = person(browser, live_server, "member@example.com", phone=True)
        page.goto(f"{live_server.url}/c/{host.slug}/live/{live['id']}")
        expect(page.locator("#waiting")).to_be_hidden(timeout=15_000)
        expect(page.locator("#quality-now")).to_have_text("Best quality", timeout=5_000)
        height = "() => document.getElementById('host-video').videoHeight"
        assert page.evaluate(height) == 480
        page.get_by_label("Picture").select_option("low")
        expect(page.locator("#quality-now")).to_have_text("Lower quality")
        wait_for(lambda: page.evaluate(height) == 360)
        assert frames(page) > 10
        page.get_by_label("Picture").select_option("audio")
        expect(page.locator("#quality-now")).to_have_text("Sound only")
        page.wait_for_timeout(1000)
        assert frames(page) <= 2
        page.get_by_label("Picture").select_option("high")
        expect(page.locator("#quality-now")).to_have_text("Best quality")
        wait_for(lambda: page.evaluate(height) == 480)
        assert frames(page) > 10
