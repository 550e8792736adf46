"""The whole journey as people meet it, in Debian's Chromium with a fake camera and
microphone, one browser context per person, against a real server and a real worker:

1. an owner creates a community and invites a host, a moderator and two members;
2. the host schedules and goes live; both members watch moving video and chat; one reacts;
3. the host ends the session;
4. one member records a story on the story page; the other uploads a generated file;
5. the moderator approves both, composes a 9:16 reel with a crossfade and captions, and
   publishes it;
6. an anonymous phone opens the public page and the reel plays.

It runs twice: in Indonesian (community language `id`, browsers in id-ID on Jakarta time)
and in English (the owner switches the community to English on WITA, browsers in en-US on
Makassar time). On the Indonesian run no English text from the catalogs appears on any page;
on both, every time is in the community's zone and named by it (WIB / WITA), never UTC.
A screenshot of each page is kept under test-artifacts/e2e/journey-{id,en}-*.png.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from service import i18n
from service.settings import Settings
from tests import media_files
from tests.conftest import PASSWORD, ServerProcess, make_settings, settings_env
from tests.e2e.conftest import PHONE, fits_the_screen, setup_link, shot
from tests.e2e.test_live import moving

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

ROLES = (("host", "Hana Host", "hana@example.com"), ("moderator", "Mo Moderator",
                                                      "mo@example.com"),
         ("member", "Ana O'Neil", "ana@example.com"), ("member", "Budi", "budi@example.com"))


@dataclass(frozen=True)
class Run:
    """One language's journey: the people's browsers and what they type."""

    language: str
    locale: str
    zone: str
    zone_label: str
    session: str
    chat: tuple[str, str]
    story: str
    quote: str
    reel: str

    def w(self, message: str, **params: object) -> str:
        """The words the app shows for an English msgid in this run's language."""
        for domain in ("kumpul", "kumpul_js"):
            found = i18n.translations(self.language, domain).gettext(message)
            if found != message:
                return i18n.Speech.of(self.language, self.zone).fill(found, params)
        return i18n.Speech.of(self.language, self.zone).fill(message, params)


RUNS = {
    "id": Run("id", "id-ID", "Asia/Jakarta", "WIB", "Seduh pagi",
              ("Wanginya sampai sini!", "Biji kopinya apa?"), "Seduhan pertamaku",
              "Seduhan terbaik: 100% biji kopi", "Cerita Kopi Kita"),
    "en": Run("en", "en-US", "Asia/Makassar", "WITA", "Morning brew",
              ("Smells great from here!", "Which beans?"), "My first brew",
              "Best brew: 100% beans", "Kopi Kita stories"),
}


@cache
def english_phrases() -> tuple[str, ...]:
    """Fixed English phrases of the catalogs whose Indonesian differs: none may show on an
    Indonesian page."""
    phrases: set[str] = set()
    for domain in ("kumpul", "kumpul_js"):
        translated = i18n.translations("id", domain)
        for message in getattr(translated, "_catalog", {}):
            if not isinstance(message, str) or translated.gettext(message) == message:
                continue
            for part in re.split(r"%\(\w+\)s|<[^>]+>|&\w+;", message):
                part = part.strip(" .,:;·()?!…")
                if len(part.split()) >= 2 and len(part) >= 8:
                    phrases.add(part)
    return tuple(sorted(phrases))


@pytest.fixture
def journey_server(tmp_path: Path, redis_url: str) -> Iterator[ServerProcess]:
    # Kumpul's own defaults: new communities speak Indonesian on Jakarta time
    settings: Settings = make_settings(tmp_path, KUMPUL_ICE_HOST_ADDRESSES="127.0.0.1",
                                       KUMPUL_LANGUAGE="id", KUMPUL_TIME_ZONE="Asia/Jakarta")
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


def person(browser: Browser, contexts: list[BrowserContext], run: Run,
           phone: bool = True) -> tuple[BrowserContext, Page]:
    if phone:
        context = browser.new_context(**PHONE, locale=run.locale,  # type: ignore[arg-type]
                                      timezone_id=run.zone)
    else:
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      locale=run.locale, timezone_id=run.zone)
    contexts.append(context)
    context.grant_permissions(["camera", "microphone"])
    return context, context.new_page()


def page_shot(page: Page, run: Run, name: str) -> None:
    """A screenshot, after checking the page speaks the run's language and clock."""
    text = page.evaluate("""() => {  // what is shown, less the zone list of a <select>
        const body = document.body.cloneNode(true);
        body.querySelectorAll("select[name=time_zone], script, style").forEach((e) => e.remove());
        return body.innerText; }""")
    assert page.evaluate("document.documentElement.lang") == run.language
    assert not re.search(r"\bUTC\b|\bGMT\b", text), f"a time not in the viewer's zone: {text}"
    if run.language == "id":
        english = [p for p in english_phrases() if p in text]
        assert english == [], f"English on an Indonesian page ({name}): {english}"
    shot(page, f"journey-{run.language}-{name}")


@pytest.mark.parametrize("language", ["id", "en"])
def test_the_whole_journey(journey_server: ServerProcess, browser: Browser,
                           contexts: list[BrowserContext], tmp_path: Path,
                           language: str) -> None:
    server = journey_server
    run = RUNS[language]
    w = run.w

    # 1. The owner sets up, creates the community, and invites four people by role
    _, owner = person(browser, contexts, run, phone=False)
    owner.goto(setup_link(server))
    owner.get_by_label(w("Your name")).fill("Olu Owner")
    owner.get_by_label(w("Email")).fill("olu@example.com")
    owner.get_by_label(w("Password")).fill(PASSWORD)
    owner.get_by_label(w("Community name")).fill("Kopi Kita")
    owner.get_by_role("button", name=w("Create"), exact=True).click()
    expect(owner).to_have_url(re.compile(r"/c/kopi-kita/admin$"))
    settings = owner.locator("#community-settings")
    expect(settings.get_by_label(i18n.translations("id").gettext("Language"))).to_have_value(
        "id")  # a new community speaks Indonesian
    if run.language != "id":  # the owner switches the community to English on WITA
        settings.get_by_label("Bahasa").select_option(run.language)
        settings.get_by_label("Zona waktu").select_option(run.zone)
        settings.get_by_role("button", name="Simpan").click()
        expect(settings.get_by_label(w("Time zone"))).to_have_value(run.zone)
    page_shot(owner, run, "01-admin")
    slug = "kopi-kita"
    people: dict[str, Page] = {}
    for role, name, email in ROLES:
        invite = owner.locator("form", has=owner.get_by_role("button",
                                                             name=w("Create invite link")))
        invite.locator("select[name=role]").select_option(role)
        owner.get_by_label(w("Note (who is it for?)")).fill(name)
        owner.get_by_role("button", name=w("Create invite link")).click()
        link = owner.locator("#new-invite").input_value()
        _, page = person(browser, contexts, run, phone=role != "host")
        page.goto(link)
        page.get_by_label(w("Your name")).fill(name)
        page.get_by_label(w("Email")).fill(email)
        page.get_by_label(w("Password")).fill(PASSWORD)
        page.get_by_role("button", name=w("Create account and join")).click()
        expect(page).to_have_url(f"{server.url}/c/{slug}")
        expect(page.locator("h1 + p")).to_have_text(
            re.sub(r"<[^>]+>", "", w("Your role here: <span class=\"badge\">%(role)s</span>",
                                     role=w(i18n.LABELS[role]))))
        people[email] = page
    page_shot(people["ana@example.com"], run, "02-community-phone")
    owner.reload()
    for _, name, _ in ROLES:
        expect(owner.get_by_label(w("Role of %(name)s", name=name))).to_be_visible()
    page_shot(owner, run, "03-members")

    # 2. The host schedules for 19:00 tomorrow, local time; members see it in their zone
    studio = people["hana@example.com"]
    tomorrow = (datetime.now(ZoneInfo(run.zone)) + timedelta(days=1)).replace(
        hour=19, minute=0, second=0, microsecond=0)
    studio.get_by_text(w("Schedule a session")).click()
    studio.get_by_label(w("Title"), exact=True).fill(run.session)
    studio.get_by_label(w("Starts (%(zone)s)", zone=run.zone_label)).fill(
        tomorrow.strftime("%Y-%m-%dT%H:%M"))
    studio.get_by_role("button", name=w("Schedule"), exact=True).click()
    expect(studio.get_by_role("heading", name=run.session)).to_be_visible()
    ana, budi = people["ana@example.com"], people["budi@example.com"]
    ana.reload()
    when = i18n.Speech.of(run.language, run.zone).when(tomorrow)
    expect(ana.locator("#sessions time")).to_have_text(when)
    assert when.endswith(f" {run.zone_label}") and ("19.00" in when or "7:00" in when)
    page_shot(ana, run, "04-community-scheduled")
    studio.get_by_role("link", name=w("Open the studio")).click()
    studio.get_by_role("button", name=w("Turn on camera")).click()
    studio.get_by_role("button", name=w("Go live")).click()
    expect(studio.locator("#live-state")).to_have_text(w("live now"), timeout=15_000)
    page_shot(studio, run, "05-studio-live")
    for viewer in (ana, budi):
        viewer.reload()
        viewer.get_by_role("link", name=w("Watch")).click()
        expect(viewer.locator("#waiting")).to_be_hidden(timeout=15_000)
    for viewer in (ana, budi):
        assert moving(viewer, "host-video") > 20, "the member's video is not advancing"
    expect(studio.locator("#viewer-count")).to_contain_text(w("%(count)s watching", count=2))
    ana.get_by_label(w("Message")).fill(run.chat[0])
    ana.get_by_role("button", name=w("Send"), exact=True).click()
    expect(budi.locator("#chat")).to_contain_text(f"Ana O'Neil: {run.chat[0]}")
    budi.get_by_label(w("Message")).fill(run.chat[1])
    budi.get_by_role("button", name=w("Send"), exact=True).click()
    expect(ana.locator("#chat")).to_contain_text(f"Budi: {run.chat[1]}")
    expect(studio.locator("#chat")).to_contain_text(run.chat[1])
    budi.get_by_role("button", name=w("React: %(name)s", name=w("fire"))).click()
    assert fits_the_screen(budi)
    page_shot(budi, run, "06-watching-phone")

    # 3. The host ends the session; moderators see when, in the community's zone
    studio.get_by_role("button", name=w("End session")).click()
    studio.get_by_role("button", name=w("End for everyone")).click()
    expect(studio.locator("#live-state")).to_have_text(w("ended"))
    expect(ana.locator("#live-state")).to_have_text(w("ended"))
    page_shot(studio, run, "07-studio-ended")
    mod = people["mo@example.com"]
    mod.reload()
    ended = mod.locator("#past-sessions time")
    expect(ended).to_contain_text(run.zone_label)
    ended_at = datetime.fromisoformat(str(ended.get_attribute("datetime")))
    expect(ended).to_have_text(i18n.Speech.of(run.language, run.zone).when(ended_at))
    page_shot(mod, run, "08-community-past-session")

    # 4. Ana records a story on the story page; Budi uploads a file
    ana.goto(f"{server.url}/c/{slug}")
    ana.get_by_role("link", name=w("Share your story")).click()
    expect(ana.locator(".release")).to_have_attribute("lang", run.language)
    ana.get_by_label(w("Title (optional)")).fill(run.story)
    ana.get_by_role("button", name=w("Open the camera")).click()
    ana.get_by_role("button", name=w("Start recording")).click()
    expect(ana.locator("#timer")).to_contain_text("0:03", timeout=15_000)
    ana.get_by_role("button", name=w("Stop"), exact=True).click()
    ana.get_by_role("button", name=w("Use this video")).click()
    expect(ana.get_by_role("button", name=w("Record again"))).to_be_visible()
    ana.get_by_label(w("I agree to this release.")).check()
    ana.get_by_role("button", name=w("Send my story")).click()
    sent = w("Sent! We're checking your video now.")
    expect(ana.get_by_role("status")).to_contain_text(sent, timeout=30_000)
    page_shot(ana, run, "09-story-recorded")
    story = media_files.story_mp4(tmp_path / "beans.mp4", 3, "640x360")
    budi.goto(f"{server.url}/c/{slug}/share")
    budi.get_by_role("tab", name=w("Choose a file")).click()
    budi.get_by_label(w("Video file")).set_input_files(str(story))
    budi.get_by_label(w("I agree to this release.")).check()
    budi.get_by_role("button", name=w("Send my story")).click()
    expect(budi.get_by_role("status")).to_contain_text(sent, timeout=30_000)
    budi.get_by_role("link", name=w("Follow it in My stories")).click()
    mine = budi.locator("#clip-list li", has_text="beans.mp4")
    expect(mine.locator(".state")).to_have_text(w("waiting for review"), timeout=120_000)
    page_shot(budi, run, "10-my-stories")

    # 5. The moderator approves both and composes, renders and publishes a 9:16 reel
    mod.set_viewport_size({"width": 1280, "height": 900})
    mod.goto(f"{server.url}/c/{slug}/review")
    posters = mod.locator("#queue .poster")
    expect(posters).to_have_count(2, timeout=120_000)
    expect(mod.locator("#facts")).to_contain_text(run.zone_label)  # consent, in the zone
    expect(mod.locator("#facts")).to_contain_text(f"({run.language})")  # the release read
    page_shot(mod, run, "11-review")
    mod.get_by_label(w("Quote")).fill(run.quote)
    mod.get_by_role("button", name=w("Save trim and caption")).click()
    expect(mod.locator("#saved")).to_have_text(w("Saved"))
    mod.get_by_role("button", name=w("Approve"), exact=True).click()
    expect(posters).to_have_count(1)
    mod.get_by_role("button", name=w("Approve"), exact=True).click()
    expect(mod.locator("#empty")).to_be_visible()
    mod.get_by_role("link", name=w("Reels"), exact=True).click()
    mod.get_by_label(w("Title"), exact=True).fill(run.reel)
    mod.get_by_role("button", name=w("New reel")).click()
    expect(mod.get_by_role("heading", name=run.reel)).to_be_visible()
    for _ in range(2):
        mod.locator("#approved").get_by_role("button", name=w("Add"), exact=True).first.click()
        expect(mod.locator("#save-state")).to_have_text(w("Saved"))
    expect(mod.locator("#items li")).to_have_count(2)
    expect(mod.get_by_label(w("Canvas"))).to_have_value("9:16")
    mod.get_by_label(w("Between clips")).select_option("crossfade")
    expect(mod.locator("#save-state")).to_have_text(w("Saved"))
    expect(mod.get_by_label(w("Lower-third captions"))).to_be_checked()
    mod.get_by_role("button", name=w("Render"), exact=True).click()
    expect(mod.locator("#reel-state")).to_have_text(w("rendered"), timeout=240_000)
    mod.get_by_role("button", name=w("Publish"), exact=True).click()
    expect(mod.locator("#reel-state")).to_have_text(w("published"))
    public_url = mod.locator("#public-url").inner_text()
    page_shot(mod, run, "12-composer-published")

    # 6. Anyone with the link watches it on a phone, in the community's language
    _, viewer = person(browser, contexts, RUNS["en" if run.language == "id" else "id"])
    viewer.goto(public_url)
    expect(viewer.get_by_role("heading", name=run.reel)).to_be_visible()
    played = viewer.evaluate("""async () => {
        const v = document.getElementById('reel'); v.muted = true; await v.play();
        await new Promise(r => setTimeout(r, 1500));
        return v.currentTime; }""")
    assert played > 0.5, "the public reel does not play"
    assert fits_the_screen(viewer)
    expect(viewer.get_by_role("link", name=w("Send on WhatsApp"))).to_be_visible()
    expect(viewer.get_by_text(w("Share"), exact=True)).to_be_visible()
    page_shot(viewer, run, "13-public-reel")
