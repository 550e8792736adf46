"""The member's side on a phone, in Debian's Chromium: the full-screen recorder, files checked
in the page (type, size, length, the part to keep), My stories, the community page, the public
reel page with the community's brand, and the embed. Screenshots go to test-artifacts/e2e."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip
from service.domain import live
from service.storage import open_store
from service.storage.keys import clip_source, live_recording
from tests import conftest as root
from tests import media_files
from tests.conftest import ServerProcess, jobs_using, make_settings, run_db, settings_env
from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    WATCH_CSP,
    fits_the_screen,
    shot,
    wait_until,
)
from tests.e2e.test_reels import join, upload
from tests.e2e.test_stories import log_in
from tests.remote import member_of_new_community
from workers.live import render_recording

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

MAX_SECONDS = 6
MAX_BYTES = 3_000_000


@dataclass
class World:
    """A community where the member has a story in a published reel, one turned down with a
    note, one that can't be used; an upcoming session; a past one with its replay; two
    published reels."""
    server: ServerProcess
    slug: str
    owner: str
    member: str
    moderator: str
    reel_slugs: list[str]
    session_id: str
    note: str


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.5)


def _api(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                        timeout=60)


def _publish(mod: httpx.Client, slug: str, title: str, clip: str) -> str:
    reel = mod.post(f"/api/communities/{slug}/reels", json={"title": title}).json()
    base = f"/api/communities/{slug}/reels/{reel['id']}"
    assert mod.patch(base, json={"items": [{"clip_id": clip}]}).status_code == 200
    assert mod.post(f"{base}/render").status_code == 202
    _until(lambda: mod.get(base).json()["state"] == "rendered", 240, f"{title} renders")
    return str(mod.post(f"{base}/publish").json()["slug"])


def _replay(server: ServerProcess, host: httpx.Client, slug: str, tmp: Path) -> str:
    """A session that went live and ended, its recording made into a replay by the real job."""
    made = host.post(f"/api/communities/{slug}/live", json={"title": "Roasting day"}).json()

    async def went_live_and_ended(session: AsyncSession) -> None:
        row = await live.go_live(session, made["id"])
        assert row is not None
        await live.end(session, row, row.host_id)

    run_db(server.settings, went_live_and_ended)
    recording = media_files.webm_without_duration(tmp / "recording.webm", seconds=3)
    key = live_recording(made["id"])
    open_store(server.settings).put_file(key, recording, "video/webm")

    async def stored(session: AsyncSession) -> None:
        await live.recording_stored(session, made["id"], key)

    run_db(server.settings, stored)
    with jobs_using(server.settings):
        assert render_recording(made["id"]) == "ready"
    return str(made["id"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("member-side")
    root.redis_started()
    settings = make_settings(tmp, KUMPUL_REDIS_URL=root.REDIS_TEST_URL,
                             KUMPUL_UPLOAD_MAX_SECONDS=str(MAX_SECONDS),
                             KUMPUL_UPLOAD_MAX_BYTES=str(MAX_BYTES))
    env = settings_env(settings)
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True, env=env,
                   capture_output=True)
    server = ServerProcess(settings, tmp / "server.log").start()
    with (tmp / "worker.log").open("a") as sink:
        worker = subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "ingest",
                                   "reels", "default"], env=env, stdout=sink,
                                  stderr=subprocess.STDOUT)
    try:
        first = member_of_new_community(server)
        slug = first.slug
        moderator = join(server, first.owner_token, slug, "moderator", "mod@example.com",
                         "Mo Derator")
        host = join(server, first.owner_token, slug, "host", "host@example.com", "Hana Host")
        for n in range(3):
            upload(server, slug, first.token,
                   media_files.story_mp4(tmp / f"story-{n}.mp4", 2, "360x640"))
        upload(server, slug, first.token, media_files.audio_only_mp4(tmp / "voice-note.mp4"))
        note = "Lovely, but the sound is too quiet: try again closer to the phone."
        with _api(server, moderator) as mod:
            def waiting() -> list[dict[str, Any]]:
                got: list[dict[str, Any]] = mod.get(
                    f"/api/communities/{slug}/review").json()["clips"]
                return got
            _until(lambda: len(waiting()) == 3, 180, "three stories ready for review")
            kept, other, turned_down = (c["id"] for c in waiting())
            for clip in (kept, other):
                assert mod.post(f"/api/communities/{slug}/review/{clip}/approve",
                                json={}).status_code == 200
            assert mod.post(f"/api/communities/{slug}/review/{turned_down}/reject",
                            json={"reason": "quality", "note": note}).status_code == 200
            reels = [_publish(mod, slug, "Morning pour-overs", kept),
                     _publish(mod, slug, "Beans we love", other)]
        with _api(server, host) as hosting:
            soon = (datetime.now(UTC) + timedelta(hours=3, minutes=5)).isoformat()
            upcoming = hosting.post(f"/api/communities/{slug}/live", json={
                "title": "Tasting night", "description": "Bring your beans", "starts_at": soon})
            assert upcoming.status_code == 201, upcoming.text
            _replay(server, hosting, slug, tmp)
        yield World(server, slug, first.owner_token, first.token, moderator, reels,
                    upcoming.json()["id"], note)
    finally:
        worker.terminate()
        worker.wait(20)
        server.stop()


def clips(server: ServerProcess) -> list[Clip]:
    async def work(session: AsyncSession) -> list[Clip]:
        return list(await session.scalars(select(Clip).order_by(Clip.created_at)))

    return run_db(server.settings, work)


def phone(browser: Browser, world: World, **extra: Any) -> Page:
    context = browser.new_context(**PHONE, **extra)  # type: ignore[arg-type]
    page = context.new_page()
    log_in(page, world.server, "member@example.com")
    expect(page).to_have_url(f"{world.server.url}/c/{world.slug}")
    return page


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    stream: dict[str, Any] = json.loads(out.stdout)["streams"][0]
    return stream


@pytest.fixture(scope="module")
def banded_camera(browser: Browser,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Chromium whose fake camera shows three upright bands, red | green | blue, 640x360: the
    upright middle of that picture is all green, so the stored file tells its crop."""
    folder = tmp_path_factory.mktemp("camera")
    y4m = folder / "bands.y4m"
    media_files.ffmpeg(
        "-f", "lavfi", "-i", "color=c=red:s=200x360:r=30:d=2", "-f", "lavfi",
        "-i", "color=c=lime:s=240x360:r=30:d=2", "-f", "lavfi",
        "-i", "color=c=blue:s=200x360:r=30:d=2", "-filter_complex", "hstack=inputs=3",
        "-pix_fmt", "yuv420p", str(y4m))
    launched = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={y4m}"])
    yield launched
    launched.close()


def test_record_full_screen_and_send(world: World, banded_camera: Browser) -> None:
    """The recorder fills the phone's screen with the prompt on top and the controls over the
    picture; the stored file is upright and shows exactly the preview's crop (the green band
    only, checked with ffprobe and its pixels), and is sent after watching it back."""
    context = banded_camera.new_context(**PHONE)  # type: ignore[arg-type]
    context.add_init_script(WATCH_CSP)
    context.grant_permissions(["camera", "microphone"])
    page = context.new_page()
    log_in(page, world.server, "member@example.com")
    before = {c.id for c in clips(world.server)}
    page.goto(f"{world.server.url}/c/{world.slug}/share")
    expect(page.get_by_role("button", name="Start recording")).to_be_hidden()
    page.get_by_role("button", name="Open the camera").click()
    recorder = page.get_by_role("dialog", name="Tell us about your experience")
    expect(recorder).to_be_visible()
    expect(page.get_by_role("button", name="Start recording")).to_be_visible()
    box = recorder.bounding_box()
    assert box == {"x": 0, "y": 0, "width": 390, "height": 844}  # the whole screen
    stage = page.locator("#preview").evaluate(
        "v => ({w: v.clientWidth, h: v.clientHeight, fit: getComputedStyle(v).objectFit})")
    assert stage["fit"] == "cover" and abs(stage["w"] / stage["h"] - 9 / 16) < 0.01
    shot(page, "member-01-recorder-ready")
    page.get_by_role("button", name="Start recording").click()
    expect(page.locator("#countdown")).to_be_visible()
    timer = page.get_by_role("timer")
    expect(timer).to_contain_text(f"0:02 / 0:0{MAX_SECONDS}", timeout=10_000)
    at = timer.bounding_box()
    assert at is not None and at["y"] < 120  # over the picture, at the top
    shot(page, "member-02-recording")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="Use this video")).to_be_visible()
    expect(page.get_by_role("button", name="Retake")).to_be_visible()
    expect(timer).to_be_hidden()
    shot(page, "member-03-watch-it-back")
    page.get_by_role("button", name="Use this video").click()
    expect(recorder).to_be_hidden()
    expect(page.get_by_label("Your video")).to_be_visible()
    expect(page.get_by_role("button", name="Record again")).to_be_visible()
    assert fits_the_screen(page)
    page.get_by_label("I agree to this release.").check()
    page.get_by_role("button", name="Send my story").click()
    expect(page.get_by_role("status")).to_contain_text("Sent!", timeout=30_000)
    expect(page.locator("#problem")).to_be_hidden()
    shot(page, "member-04-sent")

    (clip,) = [c for c in clips(world.server) if c.id not in before]
    assert clip.source == "recording" and clip.state in ("uploaded", "processing",
                                                         "ready_for_review")
    stored = world.server.settings.data_dir / f"recorded-{clip.id}.webm"
    stored.write_bytes(b"".join(open_store(world.server.settings).get(clip_source(clip.id))))
    size = probe(stored)
    assert size["height"] > size["width"]  # upright, as framed
    assert abs(size["width"] / size["height"] - 9 / 16) < 0.02
    for x in (0.04, 0.5, 0.96):  # edge to edge: the green band, no red nor blue
        r, g, b = media_files.frame_rgb(stored, 0.5, x=x)
        assert g > 150 and r < 90 and b < 90, (x, (r, g, b))
    assert page.evaluate("window.__cspViolations") == []
    context.close()


def test_files_are_checked_in_the_page(world: World, browser: Browser, tmp_path: Path) -> None:
    """A wrong type or a file over the size limit is refused before any byte is sent; one too
    long gets the plain reason and handles to choose the part to keep, and that part is what
    the server keeps."""
    page = phone(browser, world)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.method) if "/api/uploads" in r.url else None)
    page.goto(f"{world.server.url}/c/{world.slug}/share")
    page.get_by_role("tab", name="Choose a file").click()
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a video, just some text " * 100)
    page.get_by_label("Video file").set_input_files(str(fake))
    expect(page.get_by_role("alert")).to_contain_text("This file type isn't supported.")
    expect(page.get_by_role("alert")).to_contain_text("Send an MP4, MOV or WebM video.")
    expect(page.get_by_role("button", name="Send my story")).to_be_disabled()
    big = tmp_path / "long-ride.mp4"
    big.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (MAX_BYTES + 10))
    page.get_by_label("Video file").set_input_files(str(big))
    expect(page.get_by_role("alert")).to_contain_text("stories can be at most 3 MB")
    expect(page.locator("#picked")).to_be_hidden()
    shot(page, "member-05-too-large")

    long = media_files.colour_story_mp4(tmp_path / "ride.mp4", ("red", "blue", "lime", "yellow"))
    page.get_by_label("Video file").set_input_files(str(long))
    expect(page.locator("#keep-why")).to_have_text(
        f"This video is 8 seconds long; stories can be at most {MAX_SECONDS} seconds. "
        "Choose the part to keep below: only that part is used.")
    expect(page.locator("#problem")).to_be_hidden()  # one state: this is not an error
    start = page.get_by_label("Start of the part to keep")
    expect(start).to_be_focused()
    expect(page.locator("#keep-says")).to_have_text("Keeping 0:00 to 0:06 (6 seconds).")
    for _ in range(20):  # 0.1 s a press
        page.keyboard.press("ArrowRight")
    expect(page.locator("#keep-says")).to_have_text("Keeping 0:02 to 0:06 (4 seconds).")
    expect(start).to_have_attribute("aria-valuetext", "0:02")
    page.keyboard.press("Tab")
    expect(page.get_by_label("End of the part to keep")).to_be_focused()
    page.keyboard.press("End")  # to the end: at most 6 s between the handles
    expect(page.locator("#keep-says")).to_have_text("Keeping 0:02 to 0:08 (6 seconds).")
    assert fits_the_screen(page)
    shot(page, "member-06-choose-the-part")
    assert uploads == []  # nothing was sent for any of them

    before = {c.id for c in clips(world.server)}
    page.get_by_label("I agree to this release.").check()
    page.get_by_role("button", name="Send my story").click()
    expect(page.get_by_role("status")).to_contain_text("Sent!", timeout=30_000)
    (clip,) = [c for c in clips(world.server) if c.id not in before]
    assert (clip.keep_from_ms, clip.keep_to_ms) == (2000, 8000)
    assert "POST" in uploads and "PATCH" in uploads


def test_my_stories(world: World, browser: Browser) -> None:
    """Each story with its poster, date, length and state in words; it plays in place; the
    moderator's note apart from the reason; "Your story is in <reel>" with its link; Withdraw
    only where there is something to withdraw."""
    page = phone(browser, world)
    page.goto(f"{world.server.url}/c/{world.slug}/stories")
    featured = page.locator("#clip-list li", has=page.get_by_text("Your story is in"))
    expect(featured).to_have_count(2)
    first = featured.filter(has_text="Morning pour-overs")
    expect(first.locator(".state")).to_have_text("approved")
    expect(first.locator("img")).to_have_js_property("complete", True)
    assert first.locator("img").evaluate("i => i.naturalWidth") > 0
    expect(first.locator(".clip-length")).to_have_text("2 seconds")
    expect(first.locator("time")).to_contain_text(str(datetime.now(UTC).year))
    turned_down = page.locator("#clip-list li", has_text="not chosen")
    expect(turned_down.locator(".reason")).to_have_text(
        "The picture or sound is too poor to use.")
    expect(turned_down.locator(".note")).to_contain_text("Moderator's note:")
    expect(turned_down.locator(".note q")).to_have_text(world.note)
    unusable = page.locator("#clip-list li", has_text="voice-note.mp4")
    expect(unusable.locator(".state")).to_have_text("can't be used")
    expect(unusable.get_by_role("button", name="Withdraw")).to_have_count(0)
    expect(unusable.get_by_role("button", name="Remove")).to_be_visible()
    expect(turned_down.get_by_role("button", name="Withdraw")).to_be_visible()
    assert fits_the_screen(page)
    shot(page, "member-07-my-stories")

    first.locator("button.play").click()
    video = first.locator("video")
    expect(video).to_be_visible()
    wait_until(page, "document.querySelector('#clip-list video').currentTime > 0.2", 10_000)
    first.get_by_role("link", name="Morning pour-overs").click()
    expect(page).to_have_url(f"{world.server.url}/r/{world.reel_slugs[0]}")


def test_community_page(world: World, browser: Browser) -> None:
    """Upcoming session in the reader's time with a countdown and a working calendar file;
    the replay of the past one plays in place; published reels are listed."""
    page = phone(browser, world, timezone_id="Asia/Jakarta")
    upcoming = page.locator("#sessions li", has_text="Tasting night")
    expect(upcoming.locator("time.starts")).to_contain_text("WIB")
    expect(upcoming.locator("[data-countdown]")).to_have_text(re.compile(r"^Starts in [23] hours$"))
    calendar = upcoming.get_by_role("link", name="Add to calendar")
    href = calendar.get_attribute("href")
    assert href
    got = page.request.get(world.server.url + href)
    assert got.status == 200 and got.headers["content-type"].startswith("text/calendar")
    assert "SUMMARY:Tasting night" in got.text()
    reels = page.locator("#reels li")
    expect(reels).to_have_count(2)
    expect(reels.first.get_by_role("link")).to_have_attribute("href", f"/r/{world.reel_slugs[1]}")
    replay = page.get_by_role("button", name="Watch the replay of Roasting day")
    expect(replay).to_be_visible()
    assert fits_the_screen(page)
    shot(page, "member-08-community")
    replay.click()
    wait_until(page, "document.querySelector('#past-sessions video').currentTime > 0.2", 10_000)

    away = phone(browser, world, timezone_id="Europe/Amsterdam")
    expect(away.locator("#sessions .here-time")).to_contain_text("your time:")


def test_public_reel_with_brand_and_share(world: World, browser: Browser,
                                          tmp_path: Path) -> None:
    """The owner sets the brand in admin (logo and colour); a visitor's reel page carries the
    community's name, logo and colour, WhatsApp / copy link / share with the embed code, the
    community's other reels; the captions sit at the top, clear of the controls; the embed
    links back to the page."""
    owner = browser.new_context(**PHONE).new_page()  # type: ignore[arg-type]
    log_in(owner, world.server, "owner@example.com")
    owner.goto(f"{world.server.url}/c/{world.slug}/admin#brand")
    brand = owner.locator("#brand")
    brand.get_by_label("Logo").set_input_files(
        str(media_files.picture(tmp_path / "logo.png", size="800x800")))
    brand.get_by_label("Brand colour").fill("#0e7490")
    expect(brand.get_by_label("Use Kumpul's colours")).not_to_be_checked()
    brand.get_by_role("button", name="Save the brand").click()
    expect(owner.locator("#brand img")).to_be_visible()
    shot(owner, "member-09-admin-brand")

    options: dict[str, Any] = {**PHONE, "permissions": ["clipboard-read", "clipboard-write"]}
    visitor = browser.new_context(**options)
    page = visitor.new_page()
    page.goto(f"{world.server.url}/r/{world.reel_slugs[0]}")
    bar = page.locator(".brand-bar")
    expect(bar).to_contain_text("Remote Riders")
    assert bar.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(14, 116, 144)"
    expect(bar.locator("img")).to_have_js_property("complete", True)
    assert bar.locator("img").evaluate("i => i.naturalWidth") == 512
    whatsapp = page.get_by_role("link", name="Send on WhatsApp")
    assert whatsapp.get_attribute("href") == (
        "https://wa.me/?text=Morning+pour-overs+"
        f"{world.server.url.replace(':', '%3A').replace('/', '%2F')}%2Fr%2F{world.reel_slugs[0]}")
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#share-said")).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == \
        f"{world.server.url}/r/{world.reel_slugs[0]}"
    code = page.get_by_label("Embed it on your site: paste this code where the reel should play.")
    expect(code).to_be_hidden()
    page.get_by_text("Share", exact=True).click()
    expect(code).to_be_visible()
    assert f'src="{world.server.url}/r/{world.reel_slugs[0]}/embed"' in code.input_value()
    more = page.locator(".more-reels li")
    expect(more).to_have_count(1)
    expect(more.get_by_role("link")).to_have_text("Beans we love")
    lines = page.evaluate("""() => new Promise((resolve) => {
      const track = document.querySelector("#reel").textTracks[0];
      const done = () => resolve([...track.cues].map((c) => c.line));
      if (track.cues && track.cues.length) done();
      else document.querySelector("#reel track").addEventListener("load", done);
    })""")
    assert lines and all(line == 2 for line in lines)
    assert fits_the_screen(page)
    shot(page, "member-10-public-reel")

    page.goto(f"{world.server.url}/r/{world.reel_slugs[0]}/embed")
    back = page.get_by_role("link", name="Remote Riders · watch on its page")
    expect(back).to_have_attribute("href", f"{world.server.url}/r/{world.reel_slugs[0]}")
    expect(back).to_have_attribute("target", "_blank")
    shot(page, "member-11-embed")

    community = phone(browser, world)
    community.goto(f"{world.server.url}/c/{world.slug}/admin")  # a member: not theirs
    assert community.locator("#brand").count() == 0
