"""Stories in a real browser: record with a (fake) camera, upload a file, follow them live."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip
from service.storage import open_store
from service.storage.keys import clip_source
from tests import media_files
from tests.conftest import PASSWORD, ServerProcess, run_db, settings_env
from tests.e2e.conftest import PHONE, fits_the_screen, shot
from tests.remote import member_of_new_community

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

READ_PENDING = """async (key) => {
  const db = await new Promise((ok, no) => {
    const r = indexedDB.open("kumpul", 1); r.onsuccess = () => ok(r.result); r.onerror = no; });
  const file = await new Promise((ok) => {
    const r = db.transaction("pending").objectStore("pending").get(key);
    r.onsuccess = () => ok(r.result); });
  if (!file) return null;
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return {size: file.size, type: file.type,
          sha256: [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("")};
}"""


def clips(server: ServerProcess) -> list[Clip]:
    async def work(session: AsyncSession) -> list[Clip]:
        return list(await session.scalars(select(Clip).order_by(Clip.created_at)))

    return run_db(server.settings, work)


def log_in(page: Page, server: ServerProcess, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_record_a_story_in_the_browser(server: ServerProcess, browser: Browser) -> None:
    """MediaRecorder with the fake camera -> tus upload -> `uploaded`, identical bytes stored."""
    who = member_of_new_community(server)
    context = browser.new_context(**PHONE)  # type: ignore[arg-type]
    context.grant_permissions(["camera", "microphone"])
    page = context.new_page()
    log_in(page, server, "member@example.com")
    page.get_by_role("link", name="Share your story").click()
    expect(page.get_by_role("heading", name="Share your story")).to_be_visible()
    page.get_by_label("Title (optional)").fill("Morning ride")
    expect(page.get_by_role("button", name="Start recording")).to_be_hidden()
    page.get_by_role("button", name="Open the camera").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    page.get_by_role("button", name="Start recording").click()
    expect(page.locator("#countdown")).to_be_visible()
    expect(page.locator("#timer")).to_contain_text("0:02", timeout=10_000)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="Retake")).to_be_visible()
    expect(page.locator("#countdown")).to_be_hidden()
    recorded = page.evaluate(READ_PENDING, f"recording:{who.slug}")
    assert recorded and recorded["size"] > 10_000 and recorded["type"] == "video/webm"
    page.get_by_role("button", name="Use this video").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.locator("#progress")).to_be_hidden()
    assert fits_the_screen(page)
    shot(page, "10-recorded")

    send = page.get_by_role("button", name="Send my story")
    expect(send).to_be_disabled()  # consent first
    page.get_by_label("I agree to this release.").check()
    send.click()
    expect(page.get_by_role("status")).to_contain_text("Sent!", timeout=20_000)
    expect(page.locator("#progress-text")).to_have_text("100%")
    shot(page, "11-sent")
    assert page.evaluate(READ_PENDING, f"recording:{who.slug}") is None

    (clip,) = clips(server)
    assert clip.state == "uploaded" and clip.source == "recording"
    assert clip.title == "Morning ride" and clip.size == recorded["size"]
    stored = hashlib.sha256(b"".join(open_store(server.settings).get(clip_source(clip.id))))
    assert stored.hexdigest() == recorded["sha256"]


def test_upload_a_file_and_follow_it_live(server: ServerProcess, browser: Browser,
                                          tmp_path: Path) -> None:
    """A picked file uploads with a progress bar; My stories shows the verdict as it lands."""
    who = member_of_new_community(server)
    good = media_files.story_mp4(tmp_path / "ride.mp4", seconds=2)
    voice = media_files.audio_only_mp4(tmp_path / "voice-note.mp4")
    page = browser.new_context(**PHONE).new_page()  # type: ignore[arg-type]
    log_in(page, server, "member@example.com")
    for path in (good, voice):
        page.goto(f"{server.url}/c/{who.slug}/share")
        page.get_by_role("tab", name="Choose a file").click()
        page.get_by_label("Video file").set_input_files(str(path))
        page.get_by_label("I agree to this release.").check()
        page.get_by_role("button", name="Send my story").click()
        expect(page.get_by_role("status")).to_contain_text("Sent!", timeout=20_000)
        page.get_by_role("link", name="Follow it in My stories").click()
    expect(page.get_by_role("heading", name="My stories")).to_be_visible()
    items = page.locator("#clip-list li")
    expect(items).to_have_count(2)
    expect(items.locator(".state").first).to_have_text("received")

    worker = subprocess.run([sys.executable, "-m", "service.cli", "worker", "ingest", "--burst"],
                            env=settings_env(server.settings), capture_output=True, text=True,
                            timeout=120)
    assert worker.returncode == 0, worker.stderr
    refused = page.locator("#clip-list li", has_text="voice-note.mp4")
    expect(refused.locator(".state")).to_have_text("can't be used", timeout=10_000)
    expect(refused.locator(".reason")).to_contain_text("couldn't find a video track")
    assert fits_the_screen(page)
    shot(page, "12-my-stories")

    expect(refused.get_by_role("button", name="Withdraw")).to_have_count(0)  # nothing to take back
    ready = page.locator("#clip-list li", has_text="ride.mp4")
    expect(ready.locator(".state")).to_have_text("waiting for review")
    expect(ready.locator("img")).to_be_visible()  # its poster, once it is prepared
    page.once("dialog", lambda dialog: dialog.accept())
    ready.get_by_role("button", name="Withdraw").click()
    expect(ready.locator(".state")).to_have_text("withdrawn")
    expect(ready.locator("img")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    refused.get_by_role("button", name="Remove").click()
    expect(refused.locator(".state")).to_have_text("withdrawn")
    assert sorted(c.state for c in clips(server)) == ["withdrawn", "withdrawn"]


def test_refusals_reach_the_member(server: ServerProcess, browser: Browser,
                                   tmp_path: Path) -> None:
    """A text file named .mp4 is refused in the page, before anything is sent, with a message
    the member can act on."""
    member_of_new_community(server)
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a video, just some text " * 100)
    page = browser.new_context(**PHONE).new_page()  # type: ignore[arg-type]
    log_in(page, server, "member@example.com")
    page.get_by_role("link", name="Share your story").click()
    page.get_by_role("tab", name="Choose a file").click()
    page.get_by_label("Video file").set_input_files(str(fake))
    page.get_by_label("I agree to this release.").check()
    expect(page.get_by_role("alert")).to_contain_text("This file type isn't supported.")
    expect(page.get_by_role("alert")).to_contain_text(re.compile("MP4, MOV or WebM"))
    expect(page.get_by_role("button", name="Send my story")).to_be_disabled()  # refused here
    assert clips(server) == []
