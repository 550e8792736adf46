"""Moderation and reels in a real browser: a moderator approves two stories (one by keyboard),
composes a 9:16 reel with a crossfade, a title card and captions, renders it with a real
worker, publishes it, and an anonymous phone plays the public page."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, expect

from tests import media_files
from tests.conftest import PASSWORD, ServerProcess, settings_env
from tests.e2e.conftest import PHONE, fits_the_screen, shot
from tests.e2e.test_stories import log_in
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus

pytestmark = pytest.mark.e2e  # drives Debian's Chromium


@pytest.fixture
def worker(server: ServerProcess, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kumpul worker` for ingest and reels, running beside the server."""
    with (tmp_path / "worker.log").open("a") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "ingest",
                                 "reels", "default"], env=settings_env(server.settings),
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(20)


def join(server: ServerProcess, owner_token: str, slug: str, role: str, email: str,
         name: str) -> str:
    """Someone accepts an invite; returns their personal API token."""
    with httpx.Client(base_url=server.url) as client:
        link = client.post(f"/api/communities/{slug}/invites", json={"role": role},
                           headers={"Authorization": f"Bearer {owner_token}"}).json()["url"]
        joined = client.post(f"/api/invites/{link.rsplit('/', 1)[1]}/accept", json={
            "email": email, "display_name": name, "password": PASSWORD}).json()
        made = client.post("/api/tokens", json={"name": "phone"},
                           headers={"X-CSRF-Token": joined["csrf_token"]})
        return str(made.json()["token"])


def upload(server: ServerProcess, slug: str, token: str, path: Path) -> None:
    """A story through tus, as any tus client sends it."""
    data = path.read_bytes()
    meta = metadata(community=slug, release=1, filename=path.name)
    with httpx.Client(base_url=server.url, headers=tus(Authorization=f"Bearer {token}")) as c:
        made = c.post("/api/uploads", headers={"Upload-Length": str(len(data)),
                                               "Upload-Metadata": meta})
        assert made.status_code == 201, made.text
        sent = c.patch(made.headers["location"], content=data, headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert sent.status_code == 204, sent.text


def stories_waiting(server: ServerProcess, tmp_path: Path) -> str:
    """Two members send stories (portrait and landscape); a moderator joins. Returns the slug."""
    first = member_of_new_community(server)
    second = join(server, first.owner_token, first.slug, "member", "ana@example.com",
                  "Ana O'Neil")
    join(server, first.owner_token, first.slug, "moderator", "mod@example.com", "Mo")
    for n, (token, size) in enumerate(((first.token, "360x640"), (second, "640x360"))):
        upload(server, first.slug, token,
               media_files.story_mp4(tmp_path / f"story-{n}.mp4", 3, size))
    return first.slug


def test_moderate_compose_render_publish(server: ServerProcess, browser: Browser,
                                         worker: subprocess.Popen[bytes],
                                         tmp_path: Path) -> None:
    slug = stories_waiting(server, tmp_path)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(page, server, "mod@example.com")
    page.goto(f"{server.url}/c/{slug}")
    page.get_by_role("link", name="Review stories").click()
    posters = page.locator("#queue .poster")
    expect(posters).to_have_count(2, timeout=60_000)
    expect(page.locator("#detail-state")).to_have_text("waiting")
    shot(page, "20-review")
    page.locator("#player").click()  # focus leaves inputs; then the keyboard decides
    page.keyboard.press("a")
    expect(posters).to_have_count(1)
    page.get_by_label("Quote").fill("Best trail: 100% \"mud\" \\o/")
    page.get_by_role("button", name="Save trim and caption").click()
    expect(page.locator("#saved")).to_have_text("Saved")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#empty")).to_be_visible()

    page.get_by_role("link", name="Reels").click()
    page.get_by_label("Title").fill("Spring highlights")
    page.get_by_role("button", name="New reel").click()
    expect(page.get_by_role("heading", name="Spring highlights")).to_be_visible()
    for _ in range(2):
        page.locator("#approved").get_by_role("button", name="Add", exact=True).first.click()
        expect(page.locator("#save-state")).to_have_text("Saved")
    expect(page.locator("#items li")).to_have_count(2)
    page.get_by_label("Between clips").select_option("crossfade")
    expect(page.locator("#save-state")).to_have_text("Saved")
    page.get_by_label("Title card text").fill("Spring: trails & mud")
    page.get_by_label("Title card", exact=True).check()
    expect(page.locator("#save-state")).to_have_text("Saved")
    expect(page.get_by_label("Lower-third captions")).to_be_checked()
    page.get_by_role("button", name="Render").click()
    expect(page.locator("#reel-state")).to_have_text("rendering")
    expect(page.locator("#render-progress")).to_be_visible()
    shot(page, "21-rendering")
    expect(page.locator("#reel-state")).to_have_text("rendered", timeout=180_000)
    expect(page.locator("#preview")).to_be_visible()
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#reel-state")).to_have_text("published")
    public_url = page.locator("#public-url").inner_text()
    shot(page, "22-composer")

    viewer = browser.new_context(**PHONE).new_page()  # type: ignore[arg-type]
    viewer.goto(public_url)
    expect(viewer.get_by_role("heading", name="Spring highlights")).to_be_visible()
    assert viewer.evaluate("""async () => {
        const v = document.getElementById('reel'); v.muted = true; await v.play();
        await new Promise(r => setTimeout(r, 1500));
        return v.currentTime; }""") > 0.5
    assert fits_the_screen(viewer)
    shot(viewer, "23-public-reel")
