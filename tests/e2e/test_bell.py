"""The bell in Debian's Chromium: a member's open page shows the unread count rise live (server-
sent events over Redis) as notices arrive from a worker, the list shows them in the page's
language, and reading them brings the count down on the other open page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser

from tests.conftest import PASSWORD, ServerProcess
from tests.e2e.conftest import wait_until
from tests.mail_support import worker
from tests.remote import member_of_new_community

pytestmark = pytest.mark.e2e  # drives Debian's Chromium


def test_the_bell_rises_live(server: ServerProcess, browser: Browser, tmp_path: Path) -> None:
    """The count rises on the open page as each notice arrives, without a reload."""
    who = member_of_new_community(server)
    assert httpx.patch(f"{server.url}/api/me", json={"language": "id"}, headers=who.auth,
                       timeout=30).status_code == 200
    owner = httpx.Client(base_url=server.url, timeout=30,
                         headers={"Authorization": f"Bearer {who.owner_token}"})
    context = browser.new_context(locale="id-ID")
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", "member@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/c/{who.slug}")
    bell = page.locator("[data-bell]")
    assert bell.get_attribute("aria-label") == "Pemberitahuan, 0 belum dibaca"
    assert page.locator("[data-unread]").is_hidden()
    other = context.new_page()  # a second open page of the same person
    other.goto(f"{server.url}/account")
    page.wait_for_load_state("networkidle")
    with worker(server.settings, tmp_path / "worker.log"):
        for n, title in enumerate(("Morning run", "Evening run"), start=1):
            starts = datetime.now(UTC) + timedelta(days=n)
            made = owner.post(f"/api/communities/{who.slug}/live",
                              json={"title": title, "starts_at": starts.isoformat()})
            assert made.status_code == 201, made.text
            wait_until(page, f"document.querySelector('[data-bell]').dataset.count === '{n}'",
                       30_000)
    assert page.locator("[data-unread]").inner_text() == "2"
    assert bell.get_attribute("aria-label") == "Pemberitahuan, 2 belum dibaca"
    page.goto(f"{server.url}/notifications")
    items = page.locator("#notices li")
    assert items.count() == 2
    assert items.first.inner_text().startswith("Sesi live baru di Remote Riders: Evening run")
    page.click("text=Tandai semua sudah dibaca")
    page.wait_for_url(f"{server.url}/notifications")
    assert page.locator("[data-unread]").is_hidden()
    wait_until(other, "document.querySelector('[data-bell]').dataset.count === '0'", 10_000)
    context.close()
