"""Highlights in a real browser: a session has ended (its recording made by the worker, its
reactions on the timeline); the moderator opens it, sees the proposed moments on the graph
and filmstrip, accepts one, and puts that clip in a 9:16 reel with a member's uploaded story;
the reel renders and publishes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from sqlalchemy.ext.asyncio import AsyncSession

from service import jobs
from service.db.models import LiveSession
from service.domain import live
from service.queue import Queues, redis_client
from service.storage import open_store
from service.storage.keys import live_recording
from tests import media_files
from tests.conftest import ServerProcess, run_db, settings_env
from tests.e2e.conftest import fits_the_screen, shot
from tests.e2e.test_reels import join, upload
from tests.e2e.test_stories import log_in
from tests.remote import member_of_new_community

pytestmark = pytest.mark.e2e  # drives Debian's Chromium


@pytest.fixture
def worker(server: ServerProcess, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kumpul worker` for every queue: recordings, moments, ingest and reels."""
    with (tmp_path / "worker.log").open("a") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "live",
                                 "ingest", "reels", "default"],
                                env=settings_env(server.settings), stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(20)


def ended_session(server: ServerProcess, host_token: str, slug: str, viewer_id: int,
                  tmp_path: Path) -> str:
    """A session that went live and ended: its 24 s recording has a loud burst at 15 s, and
    the room reacted at 5 s. The worker makes the rendition, then finds the moments."""
    with httpx.Client(base_url=server.url,
                      headers={"Authorization": f"Bearer {host_token}"}) as host:
        made = host.post(f"/api/communities/{slug}/live", json={"title": "Tasting night"})
        assert made.status_code == 201, made.text
    session_id = str(made.json()["id"])
    recording = media_files.ffmpeg_out(
        tmp_path / "recording.webm", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=24",
        "-f", "lavfi", "-i", "sine=f=300:d=24,volume='if(between(t,15,16),1,0.03)':eval=frame",
        "-c:v", "libvpx", "-deadline", "realtime", "-b:v", "1M", "-c:a", "libopus")

    async def happened(session: AsyncSession) -> None:
        await live.go_live(session, session_id)
        row = await session.get(LiveSession, session_id)
        assert row is not None
        await live.end(session, row, row.host_id)
        for n in range(25):
            await live.add_event(session, session_id, "reaction", viewer_id, "👏",
                                 5000 + n * 100)
        await live.recording_stored(session, session_id, live_recording(session_id))

    open_store(server.settings).put_file(live_recording(session_id), recording, "video/webm")
    run_db(server.settings, happened)
    jobs.render_recording(Queues(redis_client(server.settings.redis_url)), session_id)
    return session_id


def me(server: ServerProcess, token: str) -> int:
    with httpx.Client(base_url=server.url) as client:
        return int(client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                   .json()["user"]["id"])


def approve_story(server: ServerProcess, slug: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            waiting = client.get(f"/api/communities/{slug}/review").json()["clips"]
            if waiting:
                break
            time.sleep(0.5)
        assert waiting, "the story was not ingested"
        approved = client.post(f"/api/communities/{slug}/review/{waiting[0]['id']}/approve")
        assert approved.status_code == 200, approved.text


@pytest.fixture
def desk(browser: Browser) -> Iterator[BrowserContext]:
    """The moderator's desktop browser, closed afterwards."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def test_accept_a_moment_and_publish_it_in_a_reel(server: ServerProcess, desk: BrowserContext,
                                                  worker: subprocess.Popen[bytes],
                                                  tmp_path: Path) -> None:
    first = member_of_new_community(server)
    host = join(server, first.owner_token, first.slug, "host", "host@example.com", "Hana")
    moderator = join(server, first.owner_token, first.slug, "moderator", "mod@example.com",
                     "Mo")
    session_id = ended_session(server, host, first.slug, me(server, first.token), tmp_path)
    upload(server, first.slug, first.token,
           media_files.story_mp4(tmp_path / "story.mp4", 3, "360x640"))
    approve_story(server, first.slug, moderator)

    page = desk.new_page()
    log_in(page, server, "mod@example.com")
    page.goto(f"{server.url}/c/{first.slug}")
    past = page.locator("#past-sessions")
    for _ in range(60):  # the worker is making the recording's rendition
        if past.get_by_role("link", name="Highlights").count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    past.get_by_role("link", name="Highlights").click()
    expect(page.get_by_role("heading", name="Highlights: Tasting night")).to_be_visible()
    moments = page.locator("#moments li")
    expect(moments).to_have_count(2, timeout=120_000)
    expect(page.locator("#marks .moment-mark")).to_have_count(2)
    loud = moments.filter(has_text="loud moment")
    expect(loud).to_have_count(1)
    expect(moments.filter(has_text="25 reactions")).to_have_count(1)
    shot(page, "30-highlights")
    loud.get_by_role("button", name="Accept").click()
    expect(loud.locator(".clip-state")).to_have_text("Clip in the approved clips.",
                                                     timeout=120_000)
    shot(page, "31-highlight-accepted")
    page.set_viewport_size({"width": 390, "height": 844})  # and on a phone
    assert fits_the_screen(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="Reels").click()
    page.get_by_label("Title").fill("Tasting night and stories")
    page.get_by_role("button", name="New reel").click()
    expect(page.get_by_role("heading", name="Tasting night and stories")).to_be_visible()
    approved = page.locator("#approved")
    expect(approved.get_by_role("button", name="Add", exact=True)).to_have_count(2)
    expect(approved).to_contain_text("Tasting night at")
    for _ in range(2):
        approved.get_by_role("button", name="Add", exact=True).first.click()
        expect(page.locator("#save-state")).to_have_text("Saved")
    expect(page.locator("#items li")).to_have_count(2)
    page.get_by_role("button", name="Render").click()
    expect(page.locator("#reel-state")).to_have_text("rendered", timeout=240_000)
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#reel-state")).to_have_text("published")
    public_url = page.locator("#public-url").inner_text()
    shot(page, "32-reel-with-highlight")

    with httpx.Client() as anonymous:
        public = anonymous.get(public_url)
        assert public.status_code == 200
        video = anonymous.get(public_url.rstrip("/") + "/video.mp4",
                              headers={"Range": "bytes=0-99"})
        assert video.status_code == 206
    assert session_id
