"""People who use only the keyboard: a member records and sends a story with the (fake)
camera, a moderator approves one story and rejects another, a host goes live and a viewer
chats and reacts. No clicks: Tab, Shift+Tab, arrows, Space, Enter and typing; after every
step the focus is on a sensible next control (never <body>), and every control on the way
shows a focus ring; and axe checks the states these journeys reach."""

from __future__ import annotations

import time

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import PASSWORD
from tests.e2e.test_a11y import Audit, World, axe_context, focused, tab_to, world

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

__all__ = ["world"]  # the a11y module's world, built again for this module


def keyboard_log_in(page: Page, world: World, email: str) -> None:
    page.goto(f"{world.server.url}/login")
    tab_to(page, "input[name=email]")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{world.server.url}/c/{world.slug}")


def test_a_moderator_approves_and_rejects_by_keyboard(world: World, browser: Browser) -> None:
    """First in this module: the two stories waiting in the world are the whole queue."""
    audit = Audit()
    page = axe_context(browser, "dark-desktop").new_page()
    keyboard_log_in(page, world, "mod@example.com")
    tab_to(page, "a[href$='/review']")
    page.keyboard.press("Enter")
    posters = page.locator("#queue .poster")
    expect(posters).to_have_count(2)
    first, second = posters.nth(0).get_attribute("data-clip"), posters.nth(1).get_attribute(
        "data-clip")

    tab_to(page, "#approve")
    page.keyboard.press("Enter")
    expect(posters).to_have_count(1)
    # focus moves to the story now open, never to <body>
    expect(posters.first).to_be_focused()
    expect(posters.first).to_have_attribute("data-clip", str(second))

    tab_to(page, "#reason")
    page.keyboard.press("ArrowDown")
    reason = page.locator("#reason option:checked").inner_text()
    tab_to(page, "#note")
    page.keyboard.type("Too dark to see the cup, try by the window.")
    page.keyboard.press("Tab")
    assert focused(page) == "button#reject"
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#empty")).to_be_focused()
    audit.check(page, "review: none left")

    with httpx.Client(base_url=world.server.url,
                      headers={"Authorization": f"Bearer {world.moderator_token}"}) as mod:
        approved = mod.get(f"/api/communities/{world.slug}/review/{first}").json()
        # the rejection is sent once its few seconds to undo have passed
        deadline = time.monotonic() + 15
        while True:
            rejected = mod.get(f"/api/communities/{world.slug}/review/{second}").json()
            if rejected["state"] != "ready_for_review" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert approved["state"] == "approved"
    assert rejected["state"] == "rejected"
    assert rejected["reason"] == reason

    member = axe_context(browser, "dark-phone").new_page()
    keyboard_log_in(member, world, "member@example.com")
    member.goto(f"{world.server.url}/c/{world.slug}/stories")
    expect(member.locator(".reason").filter(has_text=reason)).to_be_visible()
    audit.check(member, "my stories: one not approved, with the reason")
    assert not audit.found, audit.report()


def test_a_member_records_and_sends_a_story_by_keyboard(world: World, browser: Browser) -> None:
    audit = Audit()
    context = axe_context(browser, "light-phone")
    context.grant_permissions(["camera", "microphone"])
    page = context.new_page()
    keyboard_log_in(page, world, "member@example.com")
    tab_to(page, "a[href$='/share']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Share your story")).to_be_visible()

    tab_to(page, "#camera")
    page.keyboard.press("Enter")
    expect(page.locator("#start")).to_be_focused()  # the recorder is open, full screen
    page.keyboard.press("Enter")
    expect(page.locator("#countdown")).to_be_focused()
    expect(page.locator("#stop")).to_be_focused(timeout=10_000)
    expect(page.locator("#record-status")).to_contain_text("Recording")
    audit.check(page, "share: recording")
    page.wait_for_timeout(2500)
    page.keyboard.press("Enter")
    expect(page.locator("#use")).to_be_focused()  # watch it back, then use it
    audit.check(page, "share: watching it back")
    page.keyboard.press("Enter")
    expect(page.locator("#consent")).to_be_focused()  # the next step: the release
    expect(page.locator("#status")).to_contain_text("Recorded")
    audit.check(page, "share: recorded")
    tab_to(page, "#title", back=True)
    page.keyboard.type("Pour-over by keyboard")
    tab_to(page, "#consent")
    page.keyboard.press("Space")
    expect(page.locator("#consent")).to_be_checked()
    page.keyboard.press("Tab")
    assert focused(page) == "button#send"
    page.keyboard.press("Enter")
    follow = page.get_by_role("link", name="Follow it in My stories")
    expect(follow).to_be_focused(timeout=30_000)
    audit.check(page, "share: sent")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Pour-over by keyboard")).to_be_visible()
    audit.check(page, "my stories: just sent")
    assert not audit.found, audit.report()


def test_a_viewer_chats_and_reacts_by_keyboard(world: World, browser: Browser) -> None:
    audit = Audit()
    host_context = axe_context(browser, "dark-desktop")
    host_context.grant_permissions(["camera", "microphone"])
    studio = host_context.new_page()
    keyboard_log_in(studio, world, "host@example.com")
    studio.goto(f"{world.server.url}/c/{world.slug}/live/{world.session_id}/studio")
    tab_to(studio, "#camera")
    studio.keyboard.press("Enter")
    expect(studio.locator("#go-live")).to_be_focused()
    studio.keyboard.press("Enter")
    expect(studio.locator("#live-state")).to_have_text("live now", timeout=15_000)
    expect(studio.locator("#toggle-mic")).to_be_focused()  # on air: mute is at hand, End is not
    audit.check(studio, "studio: live")

    page = axe_context(browser, "dark-phone").new_page()
    keyboard_log_in(page, world, "member@example.com")
    tab_to(page, f"a[href$='/live/{world.session_id}']")
    page.keyboard.press("Enter")
    expect(page.locator("#waiting")).to_be_hidden(timeout=15_000)

    tab_to(page, "#chat-form input[name=text]")
    page.keyboard.type("Hello from the keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_role("log", name="Chat")).to_contain_text(
        "Mo: Hello from the keyboard")
    expect(studio.locator("#chat")).to_contain_text("Hello from the keyboard")
    assert focused(page) == "input#"  # still in the message box, ready for the next one

    tab_to(page, "#reaction-buttons button[aria-label='React: fire']", back=True)
    page.keyboard.press("Space")
    expect(studio.locator(".reaction-bubble", has_text="🔥")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(studio.locator(".reaction-bubble", has_text="🔥")).not_to_have_count(0)
    audit.check(page, "watch: live, with chat")
    audit.check(studio, "studio: live, with chat and reactions")
    assert not audit.found, audit.report()
