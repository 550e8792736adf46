"""The host's studio and the viewer's page as people use them, on a phone and on a laptop:
scheduling ends on a confirmation with the link to share; backstage shows the camera, device
pickers and a moving microphone level before anyone sees it; on air, a LIVE badge with the
time on air and the viewer count; muting and hiding reach the viewers (measured on what they
receive); the end is confirmed; viewers' controls turn off and the replay appears once the
recording is ready; an upcoming session counts down; chat lines carry the server's time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocket, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import LiveSession
from tests.conftest import ServerProcess, run_db, settings_env
from tests.e2e.conftest import PHONE, fits_the_screen, shot, wait_until
from tests.e2e.test_live import join, live_server
from tests.e2e.test_stories import log_in
from tests.remote import member_of_new_community

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

__all__ = ["live_server"]

DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
# test-only: keep the page's peer connections reachable, to read what really arrives
KEEP_CONNECTIONS = """(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();"""
# the sound energy that arrived on the page's inbound audio, summed over its connections
AUDIO_ENERGY = """async () => {
  let energy = 0;
  for (const pc of window.__pcs) {
    for (const report of (await pc.getStats()).values()) {
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        energy += report.totalAudioEnergy || 0;
      }
    }
  }
  return energy;
}"""
# the mean brightness (0-255) of what the host's video shows now
BRIGHTNESS = """(id) => {
  const video = document.getElementById(id);
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 48;
  const g = canvas.getContext("2d");
  g.drawImage(video, 0, 0, 64, 48);
  const px = g.getImageData(0, 0, 64, 48).data;
  let sum = 0;
  for (let i = 0; i < px.length; i += 4) {
    sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
  }
  return sum / (px.length / 4);
}"""


def open_as(browser: Browser, server: ServerProcess, email: str, phone: bool) -> tuple[
        BrowserContext, Page]:
    context = browser.new_context(**(PHONE if phone else DESKTOP))
    context.grant_permissions(["camera", "microphone"])
    context.add_init_script(KEEP_CONNECTIONS)
    page = context.new_page()
    log_in(page, server, email)
    return context, page


def energy_over(page: Page, seconds: float) -> float:
    before = float(page.evaluate(AUDIO_ENERGY))
    page.wait_for_timeout(int(seconds * 1000))
    return float(page.evaluate(AUDIO_ENERGY)) - before


def chat_frames(page: Page) -> list[dict[str, Any]]:
    """Every chat message the page's room socket receives, as sent over the wire."""
    seen: list[dict[str, Any]] = []

    def on_socket(socket: WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("type") == "chat":
                seen.append(message)
        socket.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return seen


@pytest.mark.parametrize("host_on_phone", [False, True], ids=["host-laptop", "host-phone"])
def test_backstage_live_mute_end_confirmed_and_the_replay(
        live_server: ServerProcess, browser: Browser, host_on_phone: bool) -> None:
    """The whole host journey, with a viewer on the other kind of screen."""
    server = live_server
    host = member_of_new_community(server, role="host")
    join(server, host.owner_token, host.slug, "ana@example.com", "Ana")
    tag = "phone" if host_on_phone else "laptop"

    _, studio = open_as(browser, server, "member@example.com", phone=host_on_phone)
    studio.goto(f"{server.url}/c/{host.slug}")
    studio.get_by_text("Schedule a session").click()
    studio.get_by_label("Title").fill("Roastery tour")
    studio.get_by_role("button", name="Schedule").click()
    # a confirmation with the link to share, not the studio straight away
    expect(studio.get_by_text("Your session is scheduled.")).to_be_visible()
    expect(studio).to_have_url(re.compile(r"/live/\w+/scheduled$"))
    watch_link = studio.get_by_label("Link to the session").input_value()
    assert re.fullmatch(rf"{server.url}/c/{host.slug}/live/\w+", watch_link)
    whatsapp = studio.get_by_role("link", name="Share on WhatsApp").get_attribute("href") or ""
    assert urlparse(whatsapp).netloc == "wa.me"
    assert watch_link in parse_qs(urlparse(whatsapp).query)["text"][0]
    assert fits_the_screen(studio)
    shot(studio, f"40-scheduled-{tag}")
    studio.get_by_role("link", name="Open the studio").click()

    # backstage: nothing is sent yet; the camera, devices and a moving microphone level
    expect(studio.locator("#backstage-cover")).to_be_visible()
    expect(studio.locator("#camera-device")).to_be_disabled()
    studio.get_by_role("button", name="Turn on camera").click()
    expect(studio.locator("#controls")).to_be_visible()
    expect(studio.locator("#backstage-cover")).to_be_hidden()
    wait_until(studio, "document.querySelectorAll('#camera-device option').length >= 1 && "
               "document.getElementById('camera-device').options[0].value !== ''", 5_000)
    assert studio.locator("#mic-device option").count() >= 1
    wait_until(studio, "document.getElementById('mic-level').value > 0.05", 5_000)
    expect(studio.locator("#live-state")).to_have_text("upcoming")
    assert fits_the_screen(studio)
    shot(studio, f"41-backstage-{tag}")

    studio.get_by_role("button", name="Go live").click()
    expect(studio.locator("#live-state")).to_have_text("live now", timeout=15_000)
    expect(studio.locator("#elapsed")).to_be_visible()
    first = studio.locator("#elapsed").inner_text()
    studio.wait_for_timeout(1_500)
    assert studio.locator("#elapsed").inner_text() != first, "the time on air does not move"

    _, viewer = open_as(browser, server, "ana@example.com", phone=not host_on_phone)
    frames = chat_frames(viewer)  # the viewer's room socket, from its first frame
    viewer.goto(watch_link)
    expect(viewer.locator("#waiting")).to_be_hidden(timeout=15_000)
    expect(viewer.locator("#elapsed")).to_be_visible()
    expect(studio.locator("#viewer-count")).to_contain_text("1 watching")

    # chat lines carry the time the server stamped on them
    viewer.get_by_label("Message").fill("Smells great from here")
    viewer.get_by_role("button", name="Send").click()
    line = studio.locator("#chat li").filter(has_text="Smells great from here")
    expect(line).to_be_visible()
    said = line.locator("time.chat-time")
    assert re.fullmatch(r"\d{1,2}[.:]\d{2}( [AP]M)?", said.inner_text().replace("\u202f", " "))
    sent = [f for f in frames if f["text"] == "Smells great from here"]
    assert sent and abs(sent[0]["at"] / 1000 - time.time()) < 30
    stamped = datetime.fromisoformat((said.get_attribute("datetime") or "").replace("Z", "+00:00"))
    assert abs(stamped.timestamp() * 1000 - sent[0]["at"]) < 1000

    # muting reaches the viewer: the sound energy that arrives drops to (nearly) nothing
    viewer.get_by_role("button", name="Sound on").click()
    wait_until(viewer, "document.getElementById('host-video').readyState >= 2", 10_000)
    loud = energy_over(viewer, 2.5)
    assert loud > 0, "no sound arrives before muting"
    studio.get_by_role("button", name="Mute microphone").click()
    expect(studio.get_by_role("button", name="Unmute microphone")).to_be_visible()
    viewer.wait_for_timeout(1_000)  # what was in flight
    quiet = energy_over(viewer, 2.5)
    assert quiet < loud * 0.02, (loud, quiet)
    studio.get_by_role("button", name="Unmute microphone").click()
    viewer.wait_for_timeout(1_000)
    assert energy_over(viewer, 2.5) > loud * 0.2

    # hiding the camera: the viewer's picture turns black, then comes back
    bright = float(viewer.evaluate(BRIGHTNESS, "host-video"))
    assert bright > 40, bright  # Chromium's fake camera: a lit test card
    studio.get_by_role("button", name="Hide camera").click()
    expect(studio.locator("#camera-hidden")).to_be_visible()
    wait_until(viewer, f"({BRIGHTNESS})('host-video') < 8", 10_000)
    shot(studio, f"42-live-camera-hidden-{tag}")
    studio.get_by_role("button", name="Show camera").click()
    wait_until(viewer, f"({BRIGHTNESS})('host-video') > 30", 15_000)
    shot(studio, f"43-live-{tag}")
    shot(viewer, f"44-viewer-live-{'laptop' if host_on_phone else 'phone'}")

    # the end is asked twice: Keep going leaves everything on air
    studio.get_by_role("button", name="End session").click()
    expect(studio.get_by_role("dialog")).to_be_visible()
    shot(studio, f"45-end-confirm-{tag}")
    studio.get_by_role("button", name="Keep going").click()
    expect(studio.get_by_role("dialog")).to_be_hidden()
    expect(studio.locator("#live-state")).to_have_text("live now")
    with httpx.Client(base_url=server.url, headers=host.auth) as api:
        session_id = watch_link.rsplit("/", 1)[1]
        url = f"/api/communities/{host.slug}/live/{session_id}"
        assert api.get(url).json()["state"] == "live"
        studio.get_by_role("button", name="End session").click()
        studio.get_by_role("button", name="End for everyone").click()
        expect(studio.locator("#live-state")).to_have_text("ended")
        assert api.get(url).json()["state"] == "ended"
    expect(studio.locator("#recording-note")).to_be_visible()
    expect(studio.get_by_role("button", name="End session")).to_have_count(0)

    # the viewer's controls turn off; the replay is promised, then offered
    expect(viewer.locator("#live-state")).to_have_text("ended")
    for name in ("Raise hand", "React: love"):
        expect(viewer.get_by_role("button", name=name)).to_be_disabled()
    expect(viewer.get_by_label("Message")).to_be_disabled()
    expect(viewer.get_by_role("button", name="Send")).to_be_disabled()
    expect(viewer.locator("#waiting")).to_have_text("This session has ended.")
    # shown once the recording is stored and its rendition queued (the recorder's last
    # writes and the upload may take a while on a busy machine): only then can a worker take it
    expect(viewer.locator("#replay-note")).to_be_visible(timeout=30_000)
    expect(viewer.locator("#replay-note")).to_contain_text("being prepared")
    shot(viewer, f"46-viewer-ended-{'laptop' if host_on_phone else 'phone'}")
    worker = subprocess.run([sys.executable, "-m", "service.cli", "worker", "live", "--burst"],
                            env=settings_env(server.settings), capture_output=True, text=True,
                            timeout=300)
    assert worker.returncode == 0, worker.stderr
    replay = viewer.get_by_label("Replay of the session")
    expect(replay).to_be_visible(timeout=20_000)
    expect(viewer.locator("#replay-note")).to_have_text("The replay is ready.")
    assert viewer.evaluate("""async () => {
        const v = document.getElementById('replay'); v.muted = true; await v.play();
        await new Promise(r => setTimeout(r, 1200));
        return v.currentTime; }""") > 0.5
    assert fits_the_screen(viewer)
    shot(viewer, f"47-viewer-replay-{'laptop' if host_on_phone else 'phone'}")


@pytest.mark.parametrize("phone", [True, False], ids=["phone", "laptop"])
def test_an_upcoming_session_counts_down(live_server: ServerProcess, browser: Browser,
                                         phone: bool) -> None:
    """Before the start, viewers (and the host) see when it starts and a ticking countdown,
    not "Waiting for the host"; a session days away says how many days."""
    server = live_server
    host = member_of_new_community(server, role="host")
    join(server, host.owner_token, host.slug, "ana@example.com", "Ana")
    soon = datetime.now(UTC) + timedelta(hours=2)
    later = datetime.now(UTC) + timedelta(days=3, hours=1)
    with httpx.Client(base_url=server.url, headers=host.auth) as api:
        made = [api.post(f"/api/communities/{host.slug}/live",
                         json={"title": title, "starts_at": at.isoformat()}).json()
                for title, at in (("Cupping at two", soon), ("Harvest talk", later))]
    _, viewer = open_as(browser, server, "ana@example.com", phone=phone)
    viewer.goto(f"{server.url}/c/{host.slug}/live/{made[0]['id']}")
    countdown = viewer.get_by_role("timer", name="Time until it starts")
    expect(countdown).to_have_text(re.compile(r"^in (1:59:\d\d|2:00:00)$"))
    first = countdown.inner_text()
    viewer.wait_for_timeout(1_500)
    assert countdown.inner_text() != first, "the countdown does not tick"
    shown = viewer.locator("#starts time").get_attribute("datetime") or ""
    assert abs((datetime.fromisoformat(shown) - soon).total_seconds()) < 60
    assert viewer.locator("#starts").inner_text().startswith("Starts ")
    expect(viewer.get_by_role("button", name="Raise hand")).to_be_enabled()
    assert fits_the_screen(viewer)
    shot(viewer, f"48-upcoming-{'phone' if phone else 'laptop'}")
    viewer.goto(f"{server.url}/c/{host.slug}/live/{made[1]['id']}")
    expect(viewer.get_by_role("timer", name="Time until it starts")).to_have_text("in 3 days")

    _, studio = open_as(browser, server, "member@example.com", phone=phone)
    studio.goto(f"{server.url}/c/{host.slug}/live/{made[0]['id']}/studio")
    expect(studio.locator("#countdown")).to_have_text(re.compile(r"^· in (1:59:\d\d|2:00:00)$"))


def test_a_just_ended_sessions_page_waits_for_its_recording_and_says_if_it_failed(
        live_server: ServerProcess, browser: Browser) -> None:
    """Opened while the recording is still being stored ("none" just after the end), the
    page keeps looking; a rendition that could not be made is said, not promised forever."""
    server = live_server
    host = member_of_new_community(server, role="host")
    join(server, host.owner_token, host.slug, "ana@example.com", "Ana")
    with httpx.Client(base_url=server.url, headers=host.auth) as api:
        made = api.post(f"/api/communities/{host.slug}/live", json={"title": "Cupping"}).json()

    def recording(state: str) -> None:
        async def change(session: AsyncSession) -> None:
            await session.execute(update(LiveSession).where(LiveSession.id == made["id"]).values(
                state="ended", ended_at=datetime.now(UTC), recording_state=state))

        run_db(server.settings, change)

    recording("none")
    _, viewer = open_as(browser, server, "ana@example.com", phone=True)
    viewer.goto(f"{server.url}/c/{host.slug}/live/{made['id']}")
    expect(viewer.locator("#waiting")).to_have_text("This session has ended.")
    note = viewer.locator("#replay-note")
    expect(note).to_be_hidden()
    recording("processing")
    expect(note).to_be_visible(timeout=10_000)
    expect(note).to_contain_text("being prepared")
    recording("failed")
    expect(note).to_have_text("The replay could not be prepared.", timeout=10_000)
    expect(viewer.get_by_label("Replay of the session")).to_be_hidden()
