"""The moderator's and owner's workspace on a phone and on a laptop: reviewing with the
decision always at hand, a choice of reason (never a preselected one), undo for a few
seconds (nothing reaches the server until they pass), technical details in words and
folded away; the composer's preview drawn in the page before rendering; admin forms that
redirect, so a refresh never makes a second invite."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests import media_files
from tests.conftest import ServerProcess
from tests.e2e.conftest import PHONE, fits_the_screen, shot
from tests.e2e.test_reels import join, worker
from tests.e2e.test_stories import log_in
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

__all__ = ["worker"]

DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
OFF_TOPIC = "This story doesn't answer the prompt."


def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.5)


def send_story(server: ServerProcess, slug: str, token: str, path: Path,
               **meta: object) -> None:
    data = path.read_bytes()
    values = metadata(community=slug, release=1, filename=path.name, **meta)
    with httpx.Client(base_url=server.url, headers=tus(Authorization=f"Bearer {token}")) as c:
        made = c.post("/api/uploads", headers={"Upload-Length": str(len(data)),
                                               "Upload-Metadata": values})
        assert made.status_code == 201, made.text
        sent = c.patch(made.headers["location"], content=data, headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert sent.status_code == 204, sent.text


class Community:
    """A member's two stories (one answering a prompt) waiting for a moderator."""

    def __init__(self, server: ServerProcess, tmp_path: Path) -> None:
        first = member_of_new_community(server)
        self.server, self.slug, self.owner_token = server, first.slug, first.owner_token
        self.moderator = join(server, first.owner_token, first.slug, "moderator",
                              "mod@example.com", "Mo Derator")
        with self.api(first.owner_token) as owner:
            prompt = owner.post(f"/api/communities/{self.slug}/prompts",
                                json={"question": "How do you brew at home?"}).json()["id"]
        send_story(server, self.slug, first.token,
                   media_files.story_mp4(tmp_path / "portrait.mp4", 2, "360x640"),
                   title="Morning pour-over", prompt=prompt)
        send_story(server, self.slug, first.token,
                   media_files.story_mp4(tmp_path / "wide.mp4", 2, "640x360"),
                   title="Cold brew on the balcony")
        until(lambda: len(self.clips()) == 2, 120, "two stories ready for review")

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})

    def clips(self, state: str = "ready_for_review") -> list[dict[str, Any]]:
        with self.api(self.moderator) as mod:
            found: list[dict[str, Any]] = mod.get(
                f"/api/communities/{self.slug}/review?state={state}").json()["clips"]
        return found

    def state(self, clip_id: str) -> str:
        with self.api(self.moderator) as mod:
            return str(mod.get(f"/api/communities/{self.slug}/review/{clip_id}").json()["state"])


def on_screen(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    height = page.viewport_size["height"] if page.viewport_size else 0
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


@pytest.mark.parametrize("phone", [True, False], ids=["phone", "laptop"])
def test_review_approve_with_undo_and_a_chosen_reason(
        server: ServerProcess, browser: Browser, worker: subprocess.Popen[bytes],
        tmp_path: Path, phone: bool) -> None:
    place = Community(server, tmp_path)
    by_title = {c["title"]: c["id"] for c in place.clips()}
    answer, other = by_title["Morning pour-over"], by_title["Cold brew on the balcony"]
    tag = "phone" if phone else "laptop"
    page = browser.new_context(**(PHONE if phone else DESKTOP)).new_page()
    log_in(page, server, "mod@example.com")
    page.goto(f"{server.url}/c/{place.slug}/review")
    posters = page.locator("#queue .poster")
    expect(posters).to_have_count(2, timeout=30_000)

    # the reason is chosen, never preselected; "doesn't answer the prompt" only with a prompt
    page.locator(f'.poster[data-clip="{other}"]').click()
    expect(page.locator("#detail-title")).to_have_text("Cold brew on the balcony")
    expect(page.locator("#reason")).to_have_value("")
    assert OFF_TOPIC not in page.locator("#reason option").all_inner_texts()
    page.locator(f'.poster[data-clip="{answer}"]').click()
    expect(page.locator("#detail-title")).to_have_text("Morning pour-over")
    expect(page.locator("#reason")).to_have_value("")
    assert OFF_TOPIC in page.locator("#reason option").all_inner_texts()
    # the facts in words; the codes folded away
    expect(page.locator("#facts")).to_contain_text("Upright picture (portrait)")
    expect(page.locator("#facts")).to_contain_text(re.compile(r"(Mono|Stereo) sound"))
    expect(page.locator("#tech")).to_be_hidden()
    page.get_by_text("Technical details").click()
    expect(page.locator("#tech")).to_contain_text("360 \u00d7 640 pixels, 30 frames a second")
    expect(page.locator("#tech")).to_contain_text("H.264")
    # Approve and Reject are on screen, at the top and after scrolling to the end
    assert on_screen(page, "#approve") and on_screen(page, "#reject")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(200)
    assert on_screen(page, "#approve") and on_screen(page, "#reject")
    assert fits_the_screen(page)
    shot(page, f"50-review-{tag}")

    # approve, then undo: the story comes back and the server never heard of it
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(posters).to_have_count(1)
    expect(page.locator("#undo-text")).to_have_text("Approved: Morning pour-over")
    shot(page, f"51-review-undo-{tag}")
    page.get_by_role("button", name="Undo").click()
    expect(posters).to_have_count(2)
    expect(page.locator(f'.poster[data-clip="{answer}"]')).to_have_attribute(
        "aria-current", "true")
    page.wait_for_timeout(7_000)  # longer than the time to undo
    assert place.state(answer) == "ready_for_review"

    # reject without a reason: asked for one; with it, sent once the time to undo passed
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Choose a reason first")
    expect(page.locator("#reason")).to_be_focused()
    assert place.state(answer) == "ready_for_review"
    page.locator("#reason").select_option("quality")
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(posters).to_have_count(1)
    assert place.state(answer) == "ready_for_review"  # still undoable
    until(lambda: place.state(answer) == "rejected", 12, "the rejection is sent")
    expect(page.locator("#undo-bar")).to_be_hidden()

    # approve, then leave at once by a link: the decision goes before the page does
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#empty")).to_be_visible()
    page.get_by_role("link", name="Reels", exact=True).click()
    expect(page).to_have_url(re.compile(r"/reels$"))
    assert place.state(other) == "approved"


@pytest.mark.parametrize("phone", [True, False], ids=["phone", "laptop"])
def test_the_composer_previews_order_and_look_before_rendering(
        server: ServerProcess, browser: Browser, worker: subprocess.Popen[bytes],
        tmp_path: Path, phone: bool) -> None:
    place = Community(server, tmp_path)
    with place.api(place.moderator) as mod:
        for clip in place.clips():
            assert mod.post(f"/api/communities/{place.slug}/review/{clip['id']}/approve"
                            ).status_code == 200
        reel = mod.post(f"/api/communities/{place.slug}/reels",
                        json={"title": "Home brewing"}).json()
    page = browser.new_context(**(PHONE if phone else DESKTOP)).new_page()
    log_in(page, server, "mod@example.com")
    page.goto(f"{server.url}/c/{place.slug}/reels/{reel['id']}")
    tiles = page.locator("#look-strip .look-tile")
    expect(tiles).to_have_count(0)
    for _ in range(2):
        page.locator("#approved").get_by_role("button", name="Add", exact=True).first.click()
        expect(page.locator("#save-state")).to_have_text("Saved")
    expect(tiles).to_have_count(2)
    expect(page.locator("#look-length")).to_have_text(re.compile(r"^About 4 seconds long\.$"))

    # the title card, drawn in the page as it is typed, in the chosen colour
    page.get_by_label("Title card", exact=True).check()
    expect(page.locator("#save-state")).to_have_text("Saved")
    expect(tiles).to_have_count(3)
    page.get_by_label("Brand colour").fill("#ff0000")
    page.get_by_label("Title card text").fill("Brewing at home")
    expect(tiles.first).to_have_attribute("aria-label", "1. Title card: Brewing at home")
    expect(tiles.first).to_have_attribute("aria-pressed", "true")
    pixel = page.evaluate("""() => Array.from(document.querySelector('#look-frame canvas')
        .getContext('2d').getImageData(2, 2, 1, 1).data)""")
    assert pixel[:3] == [255, 0, 0], pixel
    expect(page.locator("#look-frame")).to_have_attribute(
        "aria-label", "Title card: Brewing at home")

    # crossfades join the parts; captions show on a picked clip
    page.get_by_label("Between clips").select_option("crossfade")
    expect(page.locator("#save-state")).to_have_text("Saved")
    expect(page.locator("#look-strip .look-join")).to_have_count(2)
    expect(page.locator("#look-length")).to_contain_text("About 5 seconds")
    tiles.nth(1).click()
    expect(page.locator("#look-frame .look-name")).to_have_text("Mo")
    page.get_by_label("Lower-third captions").uncheck()
    expect(page.locator("#save-state")).to_have_text("Saved")
    expect(page.locator("#look-frame .look-name")).to_have_count(0)

    # labels sit beside their checkboxes: one line, the box first
    for name in ("Title card", "Lower-third captions"):
        box = page.get_by_label(name, exact=True).bounding_box()
        label = page.locator("label.check", has_text=name).bounding_box()
        assert box and label
        assert label["height"] < 3 * box["height"], name
        assert box["x"] - label["x"] < 4, name
    assert fits_the_screen(page)
    shot(page, f"52-composer-preview-{'phone' if phone else 'laptop'}")


@pytest.mark.parametrize("phone", [True, False], ids=["phone", "laptop"])
def test_an_invite_made_in_admin_survives_a_refresh_once(
        server: ServerProcess, browser: Browser, phone: bool) -> None:
    """POST, redirect, GET: the refresh shows the same link and makes no second invite; the
    link says the role it grants and goes to WhatsApp in one tap; no Remove on one's own row."""
    first = member_of_new_community(server)

    def open_invites() -> list[dict[str, Any]]:
        with httpx.Client(base_url=server.url,
                          headers={"Authorization": f"Bearer {first.owner_token}"}) as owner:
            found: list[dict[str, Any]] = owner.get(
                f"/api/communities/{first.slug}/invites").json()["invites"]
        return found

    before = len(open_invites())
    page = browser.new_context(**(PHONE if phone else DESKTOP)).new_page()
    log_in(page, server, "owner@example.com")
    page.goto(f"{server.url}/c/{first.slug}/admin")
    rows = page.locator("tbody tr")
    expect(rows.filter(has_text="owner@example.com").get_by_role(
        "button", name="Remove")).to_have_count(0)
    expect(rows.filter(has_text="member@example.com").get_by_role(
        "button", name="Remove")).to_have_count(1)

    form = page.locator("form", has=page.get_by_role("button", name="Create invite link"))
    form.locator("select[name=role]").select_option("host")
    form.get_by_label("Uses").fill("3")
    page.get_by_role("button", name="Create invite link").click()
    expect(page).to_have_url(re.compile(r"/admin\?shown=[\w-]+$"))
    expect(page.get_by_role("heading", name="New invite link: joins as host")).to_be_visible()
    expect(page.get_by_text("Up to 3 people who open this link join")).to_be_visible()
    link = page.locator("#new-invite").input_value()
    assert re.fullmatch(rf"{server.url}/invite/[\w-]+", link)
    whatsapp = page.get_by_role("link", name="Share on WhatsApp").get_attribute("href") or ""
    text = parse_qs(urlparse(whatsapp).query)["text"][0]
    assert urlparse(whatsapp).netloc == "wa.me" and link in text and "host" in text
    assert len(open_invites()) == before + 1
    assert fits_the_screen(page)
    shot(page, f"53-admin-invite-{'phone' if phone else 'laptop'}")

    page.reload()
    expect(page.locator("#new-invite")).to_have_value(link)
    assert len(open_invites()) == before + 1
    made = [i for i in open_invites() if i["role"] == "host"]
    assert len(made) == 1 and made[0]["max_uses"] == 3

    # a made-up key shows nothing
    page.goto(f"{server.url}/c/{first.slug}/admin?shown=not-a-key")
    expect(page.locator("#new-invite")).to_have_count(0)
