"""Page scripts speak the page's language and clock: their catalog arrives once (content-hashed,
cached for a year) and their times read exactly as the server's Babel formats them."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser

from service import i18n
from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e  # drives Debian's Chromium

MOMENT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("locale", "language"), [("id-ID", "id"), ("en-US", "en")])
def test_scripts_write_times_as_the_server_does(server: ServerProcess, browser: Browser,
                                                locale: str, language: str) -> None:
    """i18n.js's when() gives Babel's text for the same instant, language and zone."""
    context = browser.new_context(locale=locale, timezone_id="America/New_York")
    page = context.new_page()
    page.goto(f"{server.url}/login")
    assert page.evaluate("document.documentElement.lang") == language
    zone = page.evaluate("document.documentElement.dataset.tz")
    written = page.evaluate("""async (iso) => {
        const m = await import('/static/i18n.js');
        return [m.when(iso), m.t("Saved"), m.duration(95), m.number(1234.5)]; }""",
                            MOMENT.isoformat())
    speech = i18n.Speech.of(language, zone)
    saved = {"id": "Tersimpan", "en": "Saved"}[language]
    assert written == [speech.when(MOMENT), saved, speech.duration(95),
                       speech.number(1234.5)]
    context.close()


def test_the_script_catalog_is_fetched_once_and_kept(server: ServerProcess,
                                                     browser: Browser) -> None:
    """The Indonesian catalog is downloaded on the first page only; the next page takes it
    from the browser's cache (immutable, content-hashed URL)."""
    context = browser.new_context(locale="id-ID")
    page = context.new_page()
    page.goto(f"{server.url}/login")
    url = server.url + page.evaluate("document.documentElement.dataset.catalog")
    assert url.endswith(".json")
    page.wait_for_load_state("networkidle")
    first = page.evaluate("""(url) => performance.getEntriesByType('resource')
        .filter(e => e.name === url).length""", url)
    assert first == 1, first  # the preload is the fetch: one download
    answer = httpx.get(url)
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.json()["Saved"] == "Tersimpan"
    page.goto(f"{server.url}/login?again=1")
    page.wait_for_load_state("networkidle")
    sizes = page.evaluate("""(url) => performance.getEntriesByType('resource')
        .filter(e => e.name === url).map(e => e.transferSize)""", url)
    assert sizes and all(size == 0 for size in sizes), sizes  # the cache, not the network
    context.close()
