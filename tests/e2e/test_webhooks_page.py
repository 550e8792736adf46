"""The owners' Webhooks page and the members in numbers, in a real browser on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import PASSWORD, ServerProcess
from tests.e2e.conftest import PHONE, fits_the_screen, setup_link, shot

pytestmark = pytest.mark.e2e  # drives Debian's Chromium


def test_owner_adds_an_endpoint_and_reads_the_numbers(server: ServerProcess,
                                                      browser: Browser) -> None:
    """Admin page -> numbers -> Webhooks: a refused address is explained; a public one is
    added with the chosen events and its secret shown; disabling says nothing is sent."""
    owner = browser.new_context(**PHONE)  # type: ignore[arg-type]
    page = owner.new_page()
    page.goto(setup_link(server))
    page.get_by_label("Your name").fill("Olu Owner")
    page.get_by_label("Email").fill("olu@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Community name").fill("Morning Coffee")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/c/morning-coffee/admin$"))
    expect(page.get_by_role("heading", name="Members in numbers")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Everyone"))).to_be_visible()

    page.get_by_role("link", name="Manage webhooks").click()
    expect(page).to_have_url(f"{server.url}/c/morning-coffee/admin/webhooks")
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    form = page.locator("form").filter(has=page.get_by_role("button", name="Add endpoint"))
    form.get_by_label("Receiver URL").fill("http://169.254.169.254/latest/meta-data/")
    form.get_by_label("live.ended").check()
    form.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("not a public address")

    form = page.locator("form").filter(has=page.get_by_role("button", name="Add endpoint"))
    form.get_by_label("Receiver URL").fill("https://93.184.215.14/kumpul")
    form.get_by_label("Description").fill("CRM")
    form.get_by_label("clip.approved").check()
    form.get_by_label("reel.published").check()
    form.get_by_role("button", name="Add endpoint").click()
    secret = page.get_by_label("Signing secret")
    assert secret.input_value().startswith("whsec_")
    expect(page.get_by_text("https://93.184.215.14/kumpul")).to_be_visible()
    expect(page.get_by_text("Nothing sent yet.")).to_be_visible()
    assert fits_the_screen(page)
    shot(page, "webhooks-01-added")

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_text("Disabled: nothing is sent.")).to_be_visible()
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    assert fits_the_screen(page)
    shot(page, "webhooks-02-disabled")
