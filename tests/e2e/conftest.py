"""A real server process and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from service.domain import accounts
from tests.conftest import ServerProcess, make_settings, run_db, settings_env

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def setup_link(server: ServerProcess) -> str:
    token = run_db(server.settings, accounts.issue_setup_token)
    assert token
    return f"{server.url}/setup/{token}"


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[ServerProcess]:
    settings = make_settings(tmp_path)
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True,
                   env=settings_env(settings), capture_output=True)
    process = ServerProcess(settings, tmp_path / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap --dev installs Debian's chromium")
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=CHROMIUM_ARGS)
        yield found
        found.close()


WATCH_CSP = """window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"""


@pytest.fixture(autouse=True)
def closed_contexts(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every page a test opens reports what the Content-Security-Policy blocked (nothing may
    be); every test's browser contexts close after it: a fake camera left on in one starves
    the next test's media."""
    opened = browser.new_context

    def new_context(**options: Any) -> BrowserContext:
        context = opened(**options)
        context.add_init_script(WATCH_CSP)
        return context

    monkeypatch.setattr(browser, "new_context", new_context)
    yield
    blocked = []
    for context in browser.contexts:
        for page in context.pages:
            try:
                blocked += page.evaluate("window.__cspViolations || []")
            except Exception:  # noqa: S112 - a page that closed or navigated away mid-check
                continue
        context.close()
    assert blocked == [], f"the Content-Security-Policy blocked: {blocked}"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fits_the_screen(page: Page) -> bool:
    """No sideways scrolling on a phone."""
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth + 1"))


def wait_until(page: Page, expression: str, timeout_ms: int) -> None:
    """Poll `expression` in the page until it is true. Playwright's `wait_for_function`
    evaluates its predicate with `eval`, which the pages' CSP (script-src 'self') refuses;
    `evaluate` runs through the DevTools protocol, outside the page's CSP."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout_ms} ms: {expression}")
        page.wait_for_timeout(100)
