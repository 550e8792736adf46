"""A live session in real browsers: the host goes live with a (fake) camera, two members
watch moving video and chat, one is brought on stage and removed, the host ends the session,
and the recording lands in storage and gets its rendition."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from media.probe import probe
from service.settings import Settings
from service.storage import open_store
from tests.conftest import PASSWORD, ServerProcess, make_settings, settings_env
from tests.e2e.conftest import PHONE, fits_the_screen, shot
from tests.e2e.test_stories import log_in
from tests.remote import member_of_new_community

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

FRAMES = """(id) => new Promise((resolve) => {
  const video = document.getElementById(id);
  const count = () => video.getVideoPlaybackQuality().totalVideoFrames;
  const first = count();
  setTimeout(() => resolve(count() - first), 2000);
})"""


@pytest.fixture
def live_server(tmp_path: Path, redis_url: str) -> Iterator[ServerProcess]:
    settings: Settings = make_settings(tmp_path, KUMPUL_ICE_HOST_ADDRESSES="127.0.0.1")
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True,
                   env=settings_env(settings), capture_output=True)
    process = ServerProcess(settings, tmp_path / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


def join(server: ServerProcess, owner_token: str, slug: str, email: str, name: str) -> None:
    link = httpx.post(f"{server.url}/api/communities/{slug}/invites", json={"role": "member"},
                      headers={"Authorization": f"Bearer {owner_token}"}).json()["url"]
    accepted = httpx.post(f"{server.url}/api/invites/{link.rsplit('/', 1)[1]}/accept",
                          json={"email": email, "display_name": name, "password": PASSWORD})
    assert accepted.status_code == 201, accepted.text


def person(browser: Browser, server: ServerProcess, email: str, phone: bool) -> tuple[
        BrowserContext, Page]:
    context = browser.new_context(**PHONE) if phone else browser.new_context(  # type: ignore[arg-type]
        viewport={"width": 1200, "height": 900})
    context.grant_permissions(["camera", "microphone"])
    page = context.new_page()
    log_in(page, server, email)
    return context, page


def moving(page: Page, video: str) -> int:
    return int(page.evaluate(FRAMES, video))


def test_host_goes_live_members_watch_chat_and_go_on_stage(
        live_server: ServerProcess, browser: Browser) -> None:
    host = member_of_new_community(live_server, role="host")
    join(live_server, host.owner_token, host.slug, "ana@example.com", "Ana")
    join(live_server, host.owner_token, host.slug, "budi@example.com", "Budi")

    _, studio = person(browser, live_server, "member@example.com", phone=False)
    studio.goto(f"{live_server.url}/c/{host.slug}")
    studio.get_by_text("Schedule a session").click()
    studio.get_by_label("Title").fill("Trail talk")
    studio.get_by_role("button", name="Schedule").click()
    expect(studio.get_by_role("heading", name="Trail talk")).to_be_visible()
    studio.get_by_role("link", name="Open the studio").click()
    studio.get_by_role("button", name="Turn on camera").click()
    studio.get_by_role("button", name="Go live").click()
    expect(studio.locator("#live-state")).to_have_text("live now", timeout=15_000)
    shot(studio, "30-studio-live")

    viewers = []
    for email in ("ana@example.com", "budi@example.com"):
        _, page = person(browser, live_server, email, phone=True)
        page.goto(f"{live_server.url}/c/{host.slug}")
        page.get_by_role("link", name="Watch").click()
        expect(page.locator("#waiting")).to_be_hidden(timeout=15_000)
        viewers.append(page)
    ana, budi = viewers
    for page in viewers:
        assert moving(page, "host-video") > 20
    expect(studio.locator("#viewer-count")).to_contain_text("2 watching")

    ana.get_by_label("Message").fill("Hello from the trail!")
    ana.get_by_role("button", name="Send").click()
    expect(budi.locator("#chat")).to_contain_text("Ana: Hello from the trail!")
    expect(studio.locator("#chat")).to_contain_text("Hello from the trail!")
    budi.get_by_role("button", name="React: fire").click()
    assert fits_the_screen(budi)
    shot(budi, "31-viewer")

    ana.get_by_role("button", name="Raise hand").click()
    studio.get_by_role("button", name="Invite Ana").click()
    ana.get_by_role("button", name="Join the stage").click()
    expect(ana.locator("#self-video")).to_be_visible()
    expect(budi.locator("#guest-video")).to_be_visible(timeout=15_000)
    assert moving(budi, "guest-video") > 20
    shot(budi, "32-viewer-with-guest")
    studio.get_by_role("button", name="Remove guest").click()
    expect(budi.locator("#guest-video")).to_be_hidden(timeout=10_000)
    expect(ana.locator("#self-video")).to_be_hidden()

    studio.get_by_role("button", name="End session").click()
    studio.get_by_role("button", name="End for everyone").click()
    expect(studio.locator("#live-state")).to_have_text("ended")
    expect(studio.locator("#recording-note")).to_be_visible()
    expect(budi.locator("#live-state")).to_have_text("ended")
    shot(studio, "33-studio-ended")

    worker = subprocess.run([sys.executable, "-m", "service.cli", "worker", "live", "--burst"],
                            env=settings_env(live_server.settings), capture_output=True,
                            text=True, timeout=300)
    assert worker.returncode == 0, worker.stderr
    store = open_store(live_server.settings)
    keys = [o.key for o in store.list("live/")]
    web = next(k for k in keys if k.endswith("/rendition/web.mp4"))
    assert any(k.endswith("/recording.webm") for k in keys)
    local = Path(live_server.settings.data_dir) / "got.mp4"
    local.write_bytes(b"".join(store.get(web)))
    made = probe(local, timeout=60)
    assert made.video is not None and made.duration > 3
