"""The foundation's pages in a real browser on a phone-sized screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import PASSWORD, ServerProcess
from tests.e2e.conftest import PHONE, fits_the_screen, setup_link, shot

pytestmark = pytest.mark.e2e  # drives Debian's Chromium


def test_first_owner_invites_a_member(server: ServerProcess, browser: Browser) -> None:
    """Setup link -> owner and community -> invite -> a member signs up -> roles -> logout/login."""
    owner = browser.new_context(**PHONE)  # type: ignore[arg-type]
    page = owner.new_page()
    page.goto(setup_link(server))
    expect(page.get_by_role("heading", name="Welcome to Kumpul")).to_be_visible()
    assert fits_the_screen(page)
    shot(page, "01-setup")
    page.get_by_label("Your name").fill("Olu Owner")
    page.get_by_label("Email").fill("olu@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Community name").fill("Morning Coffee")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/c/morning-coffee/admin$"))
    expect(page.get_by_role("heading", name="Invite people")).to_be_visible()
    assert fits_the_screen(page)
    shot(page, "02-admin")

    page.get_by_label("Note (who is it for?)").fill("Mia from the cafe")
    page.get_by_role("button", name="Create invite link").click()
    link = page.locator("#new-invite").input_value()
    assert re.fullmatch(rf"{server.url}/invite/[\w-]+", link)
    assert fits_the_screen(page)
    shot(page, "03-invite-link")

    member = browser.new_context(**PHONE)  # type: ignore[arg-type]
    mpage = member.new_page()
    mpage.goto(link)
    expect(mpage.get_by_role("heading", name="Join Morning Coffee")).to_be_visible()
    shot(mpage, "04-signup")
    mpage.get_by_label("Your name").fill("Mia Member")
    mpage.get_by_label("Email").fill("mia@example.com")
    mpage.get_by_label("Password").fill("short")
    mpage.get_by_role("button", name="Create account and join").click()
    # the browser's own minlength check keeps the form from being sent
    expect(mpage).to_have_url(link)
    mpage.get_by_label("Password").fill(PASSWORD)
    mpage.get_by_role("button", name="Create account and join").click()
    expect(mpage).to_have_url(f"{server.url}/c/morning-coffee")
    expect(mpage.get_by_text("Your role here: member")).to_be_visible()
    assert fits_the_screen(mpage)
    shot(mpage, "05-community")

    page.goto(f"{server.url}/c/morning-coffee/admin")
    page.get_by_label("Role of Mia Member").select_option("host")
    page.locator("tr", has_text="Mia Member").get_by_role("button", name="Save").click()
    expect(page.get_by_label("Role of Mia Member")).to_have_value("host")
    mpage.reload()
    expect(mpage.get_by_text("Your role here: host")).to_be_visible()

    # members don't reach the admin page; the used-up invite is refused
    response = mpage.goto(f"{server.url}/c/morning-coffee/admin")
    assert response is not None and response.status == 403
    expect(mpage.get_by_text("can't do this here")).to_be_visible()
    stranger = browser.new_context(**PHONE).new_page()  # type: ignore[arg-type]
    response = stranger.goto(link)
    assert response is not None and response.status == 410
    expect(stranger.get_by_text("used up")).to_be_visible()

    mpage.goto(f"{server.url}/c/morning-coffee")
    mpage.get_by_role("button", name="Log out").click()
    expect(mpage).to_have_url(re.compile(r"/login$"))
    mpage.get_by_label("Email").fill("mia@example.com")
    mpage.get_by_label("Password").fill("wrong password!")
    mpage.get_by_role("button", name="Log in").click()
    expect(mpage.get_by_role("alert")).to_contain_text("don't match")
    shot(mpage, "06-login-error")
    mpage.get_by_label("Password").fill(PASSWORD)
    mpage.get_by_role("button", name="Log in").click()
    expect(mpage).to_have_url(f"{server.url}/c/morning-coffee")


def test_pages_need_a_login(server: ServerProcess, browser: Browser) -> None:
    page = browser.new_context(**PHONE).new_page()  # type: ignore[arg-type]
    page.goto(f"{server.url}/c/anything/admin")
    expect(page).to_have_url(re.compile(r"/login\?next=/c/anything/admin$"))
    assert fits_the_screen(page)
    shot(page, "00-login")
