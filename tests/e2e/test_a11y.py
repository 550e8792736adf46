"""Every page and its main states pass axe-core's WCAG 2.2 AA rules in Debian's Chromium, in
light and dark mode, on a phone and on a desktop.

axe-core comes from npm (pinned in tests/e2e/clients, installed by `scripts/bootstrap --dev`)
and is added as an init script, which the pages' Content-Security-Policy does not apply to:
the pages are checked under their real policy, and the CSP watch of conftest still holds."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests import conftest as root
from tests import media_files
from tests.conftest import ServerProcess, make_settings, settings_env
from tests.e2e.conftest import PHONE, setup_link
from tests.e2e.test_reels import join, upload
from tests.e2e.test_stories import log_in
from tests.remote import member_of_new_community

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

AXE = Path(__file__).with_name("clients") / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
RUN_AXE = """async (tags) => {
  const found = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                         resultTypes: ["violations"]});
  return found.violations.map(v => `${v.id} (${v.impact}): ${v.help}\\n` + v.nodes.slice(0, 4)
    .map(n => `    ${n.target.join(" ")}: ${(n.failureSummary || "").replace(/\\s+/g, " ")}`)
    .join("\\n"));
}"""
# axe has no rule for it: every video, playing or not, has a name
UNNAMED_VIDEOS = """() => [...document.querySelectorAll("video")]
  .filter(v => !(v.getAttribute("aria-label") || "").trim() && !v.getAttribute("aria-labelledby"))
  .map(v => `video without a label: #${v.id}`)"""
CUES = """(id) => new Promise((resolve) => {
  const video = id ? document.getElementById(id) : document.querySelector("video");
  const track = video.textTracks[0];
  const done = () => resolve([...track.cues].map((cue) => cue.text));
  if (track.cues && track.cues.length) done();
  else video.querySelector("track").addEventListener("load", done);
})"""
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
Scheme = Literal["light", "dark"]
MODES: dict[str, tuple[Scheme, dict[str, Any]]] = {
    "light-phone": ("light", PHONE), "dark-phone": ("dark", PHONE),
    "light-desktop": ("light", DESKTOP), "dark-desktop": ("dark", DESKTOP)}


@dataclass
class World:
    """A community with something on every page: stories waiting and approved, a published
    reel, a scheduled live session, an open invite, a set-up link."""
    server: ServerProcess
    slug: str
    reel_id: str
    reel_slug: str
    session_id: str
    invite: str
    setup: str
    moderator_token: str
    draft_reel_id: str
    reset: str
    short_prompt: int  # a prompt that takes 5 s at most
    long_story: Path  # 8 s: too long for it


def _api(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("a11y")
    root.redis_started()
    settings = make_settings(tmp, KUMPUL_REDIS_URL=root.REDIS_TEST_URL,
                             KUMPUL_ICE_HOST_ADDRESSES="127.0.0.1")
    env = settings_env(settings)
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True, env=env,
                   capture_output=True)
    server = ServerProcess(settings, tmp / "server.log").start()
    with (tmp / "worker.log").open("a") as sink:
        worker = subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "ingest",
                                   "reels", "default"], env=env, stdout=sink,
                                  stderr=subprocess.STDOUT)
    try:
        setup = setup_link(server)
        first = member_of_new_community(server)
        slug = first.slug
        moderator = join(server, first.owner_token, slug, "moderator", "mod@example.com",
                         "Mo Derator")
        host = join(server, first.owner_token, slug, "host", "host@example.com", "Hana Host")
        for n, size in enumerate(("360x640", "640x360", "360x640")):
            upload(server, slug, first.token,
                   media_files.story_mp4(tmp / f"story-{n}.mp4", 2, size))
        with _api(server, moderator) as mod:
            def waiting() -> list[dict[str, Any]]:
                got: list[dict[str, Any]] = mod.get(
                    f"/api/communities/{slug}/review").json()["clips"]
                return got
            _until(lambda: len(waiting()) == 3, 120, "three stories ready for review")
            clip = waiting()[0]["id"]
            assert mod.post(f"/api/communities/{slug}/review/{clip}/approve",
                            json={}).status_code == 200
            reel = mod.post(f"/api/communities/{slug}/reels",
                            json={"title": "Morning pour-overs"}).json()
            base = f"/api/communities/{slug}/reels/{reel['id']}"
            assert mod.patch(base, json={"items": [{"clip_id": clip}]}).status_code == 200
            assert mod.post(f"{base}/render").status_code == 202
            _until(lambda: mod.get(base).json()["state"] == "rendered", 180, "the reel renders")
            published = mod.post(f"{base}/publish").json()
            draft = mod.post(f"/api/communities/{slug}/reels", json={"title": "Next one"}).json()
        with _api(server, host) as hosting:
            live = hosting.post(f"/api/communities/{slug}/live",
                                json={"title": "Tasting night", "description": "Beans"})
            assert live.status_code == 201, live.text
            short = hosting.post(f"/api/communities/{slug}/prompts",
                                 json={"question": "Your cup in five seconds?", "max_seconds": 5})
            assert short.status_code == 201, short.text
        with _api(server, first.owner_token) as owner:
            invite = owner.post(f"/api/communities/{slug}/invites",
                                json={"role": "member"}).json()["url"]
            members = owner.get(f"/api/communities/{slug}/members").json()["members"]
            member_id = next(m["user_id"] for m in members if m["display_name"] == "Mo")
            reset = owner.post(f"/api/communities/{slug}/members/{member_id}/reset-link")
            assert reset.status_code == 201, reset.text
        yield World(server, slug, reel["id"], published["slug"], live.json()["id"], invite,
                    setup, moderator, draft["id"], reset.json()["url"], short.json()["id"],
                    media_files.story_mp4(tmp / "long.mp4", 8, "180x320"))
    finally:
        worker.terminate()
        worker.wait(20)
        server.stop()


def axe_context(browser: Browser, mode: str) -> BrowserContext:
    scheme, device = MODES[mode]
    context = browser.new_context(color_scheme=scheme, **device)
    context.add_init_script(path=str(AXE))
    return context


class Audit:
    """Runs axe on page states and keeps what it finds, by state."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}
        self.checked: list[str] = []

    def check(self, page: Page, state: str) -> None:
        page.wait_for_load_state("load")
        self.checked.append(state)
        violations = page.evaluate(RUN_AXE, WCAG_AA) + page.evaluate(UNNAMED_VIDEOS)
        if violations:
            self.found[state] = violations

    def visit(self, page: Page, url: str, state: str, status: int = 200) -> None:
        response = page.goto(url)
        assert response is not None and response.status == status, (state, url)
        self.check(page, state)

    def report(self) -> str:
        return "\n".join(f"{state}:\n  " + "\n  ".join(v) for state, v in self.found.items())


@pytest.fixture
def audit() -> Audit:
    if not AXE.exists():
        pytest.fail("axe-core is missing: scripts/bootstrap --dev runs npm ci in "
                    "tests/e2e/clients")
    return Audit()


@pytest.mark.parametrize("mode", list(MODES))
def test_every_page_passes_axe(world: World, browser: Browser, audit: Audit,
                               mode: str) -> None:
    """Zero WCAG 2.2 AA violations on every page and main state, in this colour scheme and
    screen size."""
    url, slug = world.server.url, world.slug

    visitor = axe_context(browser, mode).new_page()
    audit.visit(visitor, f"{url}/login", "login")
    visitor.get_by_label("Email").fill("nobody@example.com")
    visitor.get_by_label("Password").fill("wrong password!")
    visitor.get_by_role("button", name="Log in").click()
    expect(visitor.get_by_role("alert")).to_be_visible()
    audit.check(visitor, "login with an error")
    audit.visit(visitor, f"{url}/reset", "forgot password")
    audit.visit(visitor, world.setup, "setup")
    audit.visit(visitor, world.invite, "invite sign-up")
    audit.visit(visitor, f"{url}/invite/not-a-real-invite", "error page (404)", status=404)
    audit.visit(visitor, world.reset, "choose a new password")
    audit.visit(visitor, f"{url}/r/{world.reel_slug}", "public reel")
    # the captions track loads (under the page's policy) and its cues reach the player
    assert visitor.evaluate(CUES, "reel") == ["Morning pour-overs", "Mo"]
    visitor.get_by_text("Share", exact=True).click()
    expect(visitor.locator("#embed-code")).to_be_visible()
    audit.check(visitor, "public reel with the share panel open")
    audit.visit(visitor, f"{url}/r/{world.reel_slug}/embed", "embed")
    assert visitor.evaluate(CUES, "") == ["Morning pour-overs", "Mo"]

    member = axe_context(browser, mode).new_page()
    log_in(member, world.server, "member@example.com")
    expect(member).to_have_url(f"{url}/c/{slug}")
    expect(member.locator("[data-countdown]")).to_be_visible()
    expect(member.locator("#reels li")).to_have_count(1)
    audit.check(member, "community (member: a countdown, reels)")
    audit.visit(member, f"{url}/", "home")
    audit.visit(member, f"{url}/account", "account")
    audit.visit(member, f"{url}/notifications", "notifications")
    audit.visit(member, f"{url}/c/{slug}/share", "share: record")
    member.get_by_role("button", name="Open the camera").click()
    expect(member.get_by_role("button", name="Start recording")).to_be_visible()
    audit.check(member, "share: the full-screen recorder")
    member.keyboard.press("Escape")
    expect(member.get_by_role("dialog")).to_be_hidden()
    member.get_by_role("tab", name="Choose a file").click()
    audit.check(member, "share: choose a file")
    audit.visit(member, f"{url}/c/{slug}/share?prompt={world.short_prompt}", "share: a prompt")
    member.get_by_role("tab", name="Choose a file").click()
    member.get_by_label("Video file").set_input_files(str(world.long_story))
    expect(member.get_by_label("Start of the part to keep")).to_be_visible()
    audit.check(member, "share: a file too long, the part to keep")
    audit.visit(member, f"{url}/c/{slug}/stories", "my stories")
    expect(member.locator(".badge.state").first).to_be_visible()
    expect(member.locator(".in-reel")).to_have_count(1)
    audit.check(member, "my stories (listed, one in a reel)")
    member.locator("#clip-list button.play").first.click()
    audit.check(member, "my stories (a story playing)")
    audit.visit(member, f"{url}/c/{slug}/live/{world.session_id}", "watch")
    expect(member.get_by_role("button", name="React: love")).to_be_visible()
    expect(member.get_by_role("timer", name="Time until it starts")).not_to_be_empty()
    audit.check(member, "watch with the room open (upcoming: the countdown)")
    audit.visit(member, f"{url}/c/{slug}/admin", "error page (403)", status=403)

    moderator = axe_context(browser, mode).new_page()
    log_in(moderator, world.server, "mod@example.com")
    audit.visit(moderator, f"{url}/c/{slug}/review", "review")
    expect(moderator.locator("#queue .poster")).to_have_count(2)
    expect(moderator.locator("#detail")).to_be_visible()
    audit.check(moderator, "review with a story open")
    moderator.get_by_text("Technical details").click()
    expect(moderator.locator("#tech")).to_be_visible()
    audit.check(moderator, "review: technical details open")
    moderator.get_by_role("button", name="Approve", exact=True).click()
    expect(moderator.locator("#undo-bar")).to_be_visible()
    audit.check(moderator, "review: a decision that can be undone")
    moderator.get_by_role("button", name="Undo").click()  # nothing was sent
    expect(moderator.locator("#queue .poster")).to_have_count(2)
    moderator.get_by_role("button", name="Reject", exact=True).click()
    expect(moderator.get_by_role("alert")).to_be_visible()
    audit.check(moderator, "review: asked for a reason")
    moderator.locator("select[name=state]").select_option("approved")
    expect(moderator.locator("#queue .poster")).to_have_count(1)
    audit.check(moderator, "review: approved")
    audit.visit(moderator, f"{url}/c/{slug}/reels", "reels")
    audit.visit(moderator, f"{url}/c/{slug}/reels/{world.reel_id}", "composer")
    expect(moderator.locator("#reel-state")).to_have_text("published")
    audit.check(moderator, "composer (published)")
    audit.visit(moderator, f"{url}/c/{slug}/reels/{world.draft_reel_id}", "composer (draft)")
    expect(moderator.locator("#approved").get_by_role("button").first).to_be_visible()
    audit.check(moderator, "composer (draft, approved stories listed)")
    audit.visit(moderator, f"{url}/c/{slug}/live/{world.session_id}/highlights", "highlights")

    host = axe_context(browser, mode).new_page()
    host.context.grant_permissions(["camera", "microphone"])
    log_in(host, world.server, "host@example.com")
    audit.visit(host, f"{url}/c/{slug}", "community (host)")
    audit.visit(host, f"{url}/c/{slug}/live/{world.session_id}/scheduled", "scheduled")
    audit.visit(host, f"{url}/c/{slug}/live/{world.session_id}/studio", "studio")
    host.get_by_role("button", name="Turn on camera").click()
    expect(host.locator("#controls")).to_be_visible()
    audit.check(host, "studio: backstage, camera on")
    host.get_by_role("button", name="Mute microphone").click()
    host.get_by_role("button", name="Hide camera").click()
    audit.check(host, "studio: microphone muted, camera hidden")
    host.get_by_role("button", name="End session").click()
    expect(host.get_by_role("dialog")).to_be_visible()
    audit.check(host, "studio: asked to confirm the end")
    host.get_by_role("button", name="Keep going").click()

    owner = axe_context(browser, mode).new_page()
    log_in(owner, world.server, "owner@example.com")
    audit.visit(owner, f"{url}/c/{slug}", "community (owner)")
    audit.visit(owner, f"{url}/c/{slug}/admin", "admin")
    owner.get_by_role("button", name="Create invite link").click()
    expect(owner.locator("#new-invite")).to_be_visible()
    audit.check(owner, "admin with a new invite link")
    audit.visit(owner, f"{url}/admin/outbox", "outbox")
    audit.visit(owner, f"{url}/c/{slug}/admin/webhooks", "webhooks")

    assert len(audit.checked) >= 30
    assert not audit.found, f"axe found, in {mode}:\n{audit.report()}"


FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {what: `${el.tagName.toLowerCase()}#${el.id}.${el.className}`, style: style.outlineStyle,
          width: parseFloat(style.outlineWidth)};
}"""


def tab_to(page: Page, selector: str, limit: int = 60, back: bool = False) -> None:
    """Presses Tab (or Shift+Tab) until the focus is on `selector`; every control passed on
    the way shows a focus ring."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
        ring = page.evaluate(FOCUS_RING)
        if ring is not None:
            assert ring["style"] != "none" and ring["width"] >= 2, f"no focus ring: {ring}"
    raise AssertionError(f"Tab never reached {selector}")


def focused(page: Page) -> str:
    """What has the focus, as `tag#id`, for assertions on where focus went."""
    return str(page.evaluate(
        "() => `${document.activeElement.tagName.toLowerCase()}#${document.activeElement.id}`"))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_control_shows_a_focus_ring(world: World, browser: Browser,
                                          scheme: Scheme) -> None:
    """Tabbing through whole pages, every control that takes the focus draws a ring of at
    least 2 px (:focus-visible), in both colour schemes."""
    url, slug = world.server.url, world.slug
    page = browser.new_context(color_scheme=scheme, **DESKTOP).new_page()
    log_in(page, world.server, "mod@example.com")
    for path in (f"/c/{slug}", f"/c/{slug}/review", f"/c/{slug}/reels/{world.reel_id}",
                 f"/c/{slug}/share", f"/c/{slug}/live/{world.session_id}", "/account"):
        page.goto(url + path)
        page.wait_for_load_state("load")
        seen = set()
        for _ in range(45):
            page.keyboard.press("Tab")
            ring = page.evaluate(FOCUS_RING)
            if ring is None:
                break
            seen.add(ring["what"])
            assert ring["style"] != "none" and ring["width"] >= 2, (path, ring)
        assert len(seen) >= 3, (path, seen)


def test_review_shortcuts_can_be_turned_off_and_leave_space_to_buttons(
        world: World, browser: Browser) -> None:
    """WCAG 2.1.4: Space on a focused button presses that button (the player does not start);
    single-key shortcuts work on the page, can be turned off, and stay off after a reload."""
    url, slug = world.server.url, world.slug
    page = axe_context(browser, "light-desktop").new_page()
    log_in(page, world.server, "mod@example.com")
    page.goto(f"{url}/c/{slug}/review")
    posters = page.locator("#queue .poster")
    expect(posters).to_have_count(2)
    expect(posters.first).to_have_attribute("aria-current", "true")
    player = page.locator("#player")
    expect(player).to_have_js_property("readyState", 4, timeout=15_000)

    tab_to(page, "#step-on")
    page.keyboard.press("Space")  # one frame on, and nothing else
    page.wait_for_timeout(300)
    assert page.evaluate("document.getElementById('player').paused")
    assert page.evaluate("document.getElementById('player').currentTime") > 0.03
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.evaluate("document.getElementById('player').paused")

    page.locator("h1").click()  # the focus leaves the controls: the page's keys act
    page.keyboard.press("n")
    expect(posters.nth(1)).to_have_attribute("aria-current", "true")
    page.keyboard.press("p")
    expect(posters.first).to_have_attribute("aria-current", "true")

    tab_to(page, "#shortcuts", back=True)
    page.keyboard.press("Space")
    expect(page.get_by_label("Single-key shortcuts")).not_to_be_checked()
    page.locator("h1").click()
    page.keyboard.press("n")
    page.keyboard.press("Space")
    page.wait_for_timeout(500)
    expect(posters.first).to_have_attribute("aria-current", "true")
    assert page.evaluate("document.getElementById('player').paused")
    page.reload()
    expect(posters).to_have_count(2)
    expect(page.get_by_label("Single-key shortcuts")).not_to_be_checked()
    page.locator("h1").click()
    page.keyboard.press("n")
    page.wait_for_timeout(500)
    expect(posters.first).to_have_attribute("aria-current", "true")


def test_share_tabs_follow_the_aria_tabs_pattern(world: World, browser: Browser) -> None:
    """One tab in the Tab order; arrows, Home and End move between tabs and show their panel;
    Tab goes on into the panel."""
    page = axe_context(browser, "light-phone").new_page()
    log_in(page, world.server, "member@example.com")
    page.goto(f"{world.server.url}/c/{world.slug}/share")
    record = page.get_by_role("tab", name="Record")
    file = page.get_by_role("tab", name="Choose a file")
    expect(page.get_by_role("tablist", name="How to send your story")).to_be_visible()
    expect(record).to_have_attribute("aria-selected", "true")
    expect(file).to_have_attribute("tabindex", "-1")
    tab_to(page, "#tab-record")
    page.keyboard.press("ArrowRight")
    assert focused(page) == "button#tab-file"
    expect(file).to_have_attribute("aria-selected", "true")
    expect(record).to_have_attribute("aria-selected", "false")
    expect(page.get_by_role("tabpanel", name="Choose a file")).to_be_visible()
    expect(page.locator("#panel-record")).to_be_hidden()
    page.keyboard.press("Tab")
    assert focused(page) == "input#file"
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "button#tab-file"
    page.keyboard.press("Home")
    assert focused(page) == "button#tab-record"
    expect(page.get_by_role("tabpanel", name="Record")).to_be_visible()
    page.keyboard.press("ArrowLeft")  # wraps around
    assert focused(page) == "button#tab-file"
    page.keyboard.press("End")
    assert focused(page) == "button#tab-file"


def test_live_and_timed_text_is_announced(world: World, browser: Browser) -> None:
    """Chat is a polite live log; the countdown is spoken at once; the recording's time is
    spoken through a polite live region (not every second)."""
    page = axe_context(browser, "light-phone").new_page()
    log_in(page, world.server, "member@example.com")
    page.goto(f"{world.server.url}/c/{world.slug}/live/{world.session_id}")
    chat = page.get_by_role("log", name="Chat")
    expect(chat).to_have_attribute("aria-live", "polite")
    page.goto(f"{world.server.url}/c/{world.slug}/share")
    expect(page.locator("#countdown")).to_have_attribute("aria-live", "assertive")
    expect(page.locator("#record-status")).to_have_attribute("aria-live", "polite")
    expect(page.get_by_role("timer")).to_be_hidden()
