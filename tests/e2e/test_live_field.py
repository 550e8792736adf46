"""Live sessions in the field, in Debian's Chromium: an H.264 encoder (what OBS sends) plays
on Kumpul's own watch page; a Chromium publisher that keeps RTX gets its viewers their first
frame fast; the watch page tells when the host stops and comes back by itself."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServerProcess
from tests.e2e.test_live import FRAMES, live_server, person
from tests.live.encoder import Encoder
from tests.remote import RemoteMember, member_of_new_community

pytestmark = pytest.mark.e2e  # drives Debian's Chromium
__all__ = ["live_server"]


def scheduled(server: ServerProcess) -> tuple[RemoteMember, dict[str, Any]]:
    host = member_of_new_community(server, role="host")
    made = httpx.post(f"{server.url}/api/communities/{host.slug}/live", headers=host.auth,
                      json={"title": "Trail talk"})
    assert made.status_code == 201, made.text
    return host, made.json()


def frames(page: Page, video: str = "host-video") -> int:
    return int(page.evaluate(FRAMES, video))


def test_an_h264_encoder_plays_on_the_watch_page(live_server: ServerProcess,
                                                 browser: Browser) -> None:
    """OBS's default codec: the watch page offers what the session sends, the answer
    carries H.264, and Chromium decodes a moving picture."""
    host, live = scheduled(live_server)
    with Encoder(live["whip_url"], live["publish_token"], "H264"):
        _, page = person(browser, live_server, "member@example.com", phone=True)
        page.goto(f"{live_server.url}/c/{host.slug}/live/{live['id']}")
        expect(page.locator("#waiting")).to_be_hidden(timeout=15_000)
        assert frames(page) > 20
        listed = httpx.get(f"{live_server.url}/api/communities/{host.slug}/live",
                           headers=host.auth).json()["sessions"][0]
        assert listed["video_codec"] == "H264", listed
