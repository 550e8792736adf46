"""The whole journey as people meet it, in Debian's Chromium with a fake camera and
microphone, one browser context per person, against a real server and a real worker:

1. an owner creates a community and invites a host, a moderator and two members;
2. the host schedules and goes live; both members watch moving video and chat; one reacts;
3. the host ends the session;
4. one member records a story on the story page; the other uploads a generated file;
5. the moderator approves both, composes a 9:16 reel with a crossfade and captions, and
   publishes it;
6. an anonymous phone opens the public page and the reel plays.

A screenshot of each page is kept under test-artifacts/e2e/journey-*.png.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from service.settings import Settings
from tests import media_files
from tests.conftest import PASSWORD, ServerProcess, make_settings, settings_env
from tests.e2e.conftest import PHONE, fits_the_screen, setup_link, shot
from tests.e2e.test_live import moving

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

ROLES = (("host", "Hana Host", "hana@example.com"), ("moderator", "Mo Moderator",
                                                      "mo@example.com"),
         ("member", "Ana O'Neil", "ana@example.com"), ("member", "Budi", "budi@example.com"))


@pytest.fixture
def journey_server(tmp_path: Path, redis_url: str) -> Iterator[ServerProcess]:
    settings: Settings = make_settings(tmp_path, KUMPUL_ICE_HOST_ADDRESSES="127.0.0.1")
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True,
                   env=settings_env(settings), capture_output=True)
    process = ServerProcess(settings, tmp_path / "server.log").start()
    with (tmp_path / "worker.log").open("a") as sink:
        worker = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"],
                                  env=settings_env(process.settings), stdout=sink,
                                  stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        worker.terminate()
        worker.wait(20)
        process.stop()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Everyone's browser context, closed at the end (cameras, calls and players stop)."""
    made: list[BrowserContext] = []
    yield made
    for context in made:
        context.close()


def person(browser: Browser, contexts: list[BrowserContext],
           phone: bool = True) -> tuple[BrowserContext, Page]:
    context = browser.new_context(**PHONE) if phone else browser.new_context(  # type: ignore[arg-type]
        viewport={"width": 1280, "height": 900})
    contexts.append(context)
    context.grant_permissions(["camera", "microphone"])
    return context, context.new_page()


def page_shot(page: Page, name: str) -> None:
    shot(page, f"journey-{name}")


def test_the_whole_journey(journey_server: ServerProcess, browser: Browser,
                           contexts: list[BrowserContext], tmp_path: Path) -> None:
    server = journey_server

    # 1. The owner sets up, creates the community, and invites four people by role
    _, owner = person(browser, contexts, phone=False)
    owner.goto(setup_link(server))
    owner.get_by_label("Your name").fill("Olu Owner")
    owner.get_by_label("Email").fill("olu@example.com")
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_label("Community name").fill("Kopi Kita")
    owner.get_by_role("button", name="Create").click()
    expect(owner).to_have_url(re.compile(r"/c/kopi-kita/admin$"))
    page_shot(owner, "01-admin")
    slug = "kopi-kita"
    people: dict[str, Page] = {}
    for role, name, email in ROLES:
        invite = owner.locator("form", has=owner.get_by_role("button",
                                                             name="Create invite link"))
        invite.locator("select[name=role]").select_option(role)
        owner.get_by_label("Note (who is it for?)").fill(name)
        owner.get_by_role("button", name="Create invite link").click()
        link = owner.locator("#new-invite").input_value()
        _, page = person(browser, contexts, phone=role != "host")
        page.goto(link)
        page.get_by_label("Your name").fill(name)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account and join").click()
        expect(page).to_have_url(f"{server.url}/c/{slug}")
        expect(page.get_by_text(f"You are a {role} here.")).to_be_visible()
        people[email] = page
    page_shot(people["ana@example.com"], "02-community-phone")
    owner.reload()
    for _, name, _ in ROLES:
        expect(owner.get_by_label(f"Role of {name}")).to_be_visible()
    page_shot(owner, "03-members")

    # 2. The host schedules and goes live; both members watch, chat, and one reacts
    studio = people["hana@example.com"]
    studio.get_by_text("Schedule a session").click()
    studio.get_by_label("Title").fill("Morning brew")
    studio.get_by_role("button", name="Schedule").click()
    expect(studio.get_by_role("heading", name="Morning brew")).to_be_visible()
    studio.get_by_role("button", name="Turn on camera").click()
    studio.get_by_role("button", name="Go live").click()
    expect(studio.locator("#live-state")).to_have_text("live", timeout=15_000)
    page_shot(studio, "04-studio-live")
    ana, budi = people["ana@example.com"], people["budi@example.com"]
    for viewer in (ana, budi):
        viewer.reload()
        viewer.get_by_role("link", name="Watch").click()
        expect(viewer.locator("#waiting")).to_be_hidden(timeout=15_000)
    for viewer in (ana, budi):
        assert moving(viewer, "host-video") > 20, "the member's video is not advancing"
    expect(studio.locator("#viewer-count")).to_contain_text("2 watching")
    ana.get_by_label("Message").fill("Smells great from here!")
    ana.get_by_role("button", name="Send").click()
    expect(budi.locator("#chat")).to_contain_text("Ana O'Neil: Smells great from here!")
    budi.get_by_label("Message").fill("Which beans?")
    budi.get_by_role("button", name="Send").click()
    expect(ana.locator("#chat")).to_contain_text("Budi: Which beans?")
    expect(studio.locator("#chat")).to_contain_text("Which beans?")
    budi.get_by_role("button", name="React 🔥").click()
    assert fits_the_screen(budi)
    page_shot(budi, "05-watching-phone")

    # 3. The host ends the session
    studio.once("dialog", lambda dialog: dialog.accept())
    studio.get_by_role("button", name="End session").click()
    expect(studio.locator("#live-state")).to_have_text("ended")
    expect(ana.locator("#live-state")).to_have_text("ended")
    page_shot(studio, "06-studio-ended")

    # 4. Ana records a story on the story page; Budi uploads a file
    ana.goto(f"{server.url}/c/{slug}")
    ana.get_by_role("link", name="Share your story").click()
    ana.get_by_label("Title (optional)").fill("My first brew")
    ana.get_by_role("button", name="Turn on camera").click()
    ana.get_by_role("button", name="Start recording").click()
    expect(ana.locator("#timer")).to_contain_text("0:03", timeout=15_000)
    ana.get_by_role("button", name="Stop").click()
    expect(ana.get_by_role("button", name="Retake")).to_be_visible()
    ana.get_by_label("I agree to this release.").check()
    ana.get_by_role("button", name="Send my story").click()
    expect(ana.get_by_role("status")).to_contain_text("Sent!", timeout=30_000)
    page_shot(ana, "07-story-recorded")
    story = media_files.story_mp4(tmp_path / "beans.mp4", 3, "640x360")
    budi.goto(f"{server.url}/c/{slug}/share")
    budi.get_by_role("tab", name="Choose a file").click()
    budi.get_by_label("Video file").set_input_files(str(story))
    budi.get_by_label("I agree to this release.").check()
    budi.get_by_role("button", name="Send my story").click()
    expect(budi.get_by_role("status")).to_contain_text("Sent!", timeout=30_000)
    budi.get_by_role("link", name="Follow it in My stories").click()
    mine = budi.locator("#clip-list li", has_text="beans.mp4")
    expect(mine.locator(".state")).to_have_text("waiting for review", timeout=120_000)
    page_shot(budi, "08-my-stories")

    # 5. The moderator approves both and composes, renders and publishes a 9:16 reel
    mod = people["mo@example.com"]
    mod.set_viewport_size({"width": 1280, "height": 900})
    mod.goto(f"{server.url}/c/{slug}/review")
    posters = mod.locator("#queue .poster")
    expect(posters).to_have_count(2, timeout=120_000)
    page_shot(mod, "09-review")
    mod.get_by_label("Quote").fill("Best brew: 100% beans")
    mod.get_by_role("button", name="Save trim and caption").click()
    expect(mod.locator("#saved")).to_have_text("Saved")
    mod.get_by_role("button", name="Approve").click()
    expect(posters).to_have_count(1)
    mod.get_by_role("button", name="Approve").click()
    expect(mod.locator("#empty")).to_be_visible()
    mod.get_by_role("link", name="Reels").click()
    mod.get_by_label("Title").fill("Kopi Kita stories")
    mod.get_by_role("button", name="New reel").click()
    expect(mod.get_by_role("heading", name="Kopi Kita stories")).to_be_visible()
    for _ in range(2):
        mod.locator("#approved").get_by_role("button", name="Add", exact=True).first.click()
        expect(mod.locator("#save-state")).to_have_text("Saved")
    expect(mod.locator("#items li")).to_have_count(2)
    expect(mod.get_by_label("Canvas")).to_have_value("9:16")
    mod.get_by_label("Between clips").select_option("crossfade")
    expect(mod.locator("#save-state")).to_have_text("Saved")
    expect(mod.get_by_label("Lower-third captions")).to_be_checked()
    mod.get_by_role("button", name="Render").click()
    expect(mod.locator("#reel-state")).to_have_text("rendered", timeout=240_000)
    mod.get_by_role("button", name="Publish", exact=True).click()
    expect(mod.locator("#reel-state")).to_have_text("published")
    public_url = mod.locator("#public-url").inner_text()
    page_shot(mod, "10-composer-published")

    # 6. Anyone with the link watches it on a phone
    _, viewer = person(browser, contexts)
    viewer.goto(public_url)
    expect(viewer.get_by_role("heading", name="Kopi Kita stories")).to_be_visible()
    played = viewer.evaluate("""async () => {
        const v = document.getElementById('reel'); v.muted = true; await v.play();
        await new Promise(r => setTimeout(r, 1500));
        return v.currentTime; }""")
    assert played > 0.5, "the public reel does not play"
    assert fits_the_screen(viewer)
    page_shot(viewer, "11-public-reel")
