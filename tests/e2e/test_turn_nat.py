"""Over the wire: a member behind a NAT whose network lets UDP out only to the TURN server
watches on Kumpul's own watch page (Debian's Chromium, in its own network namespace) and
the picture moves: it came through coturn, with the credential the page was handed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser

from service.live.ice import use_host_addresses
from service.settings import Settings
from tests.conftest import PASSWORD, ServerProcess, free_port, make_settings, settings_env
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, shot, wait_until
from tests.e2e.test_live import FRAMES
from tests.live.test_signalling import publish, schedule
from tests.netns import NatHome
from tests.remote import member_of_new_community
from tests.turnserver import Coturn

pytestmark = pytest.mark.e2e
SECRET = "nat-test-turn-secret"


class PublicServer(ServerProcess):
    """`kumpul web` on the public side's address (the home reaches it through the NAT)."""

    def __init__(self, settings: Settings, log: Path, address: str) -> None:
        super().__init__(settings, log)
        self.settings = self.settings.replace(host=address,
                                              public_url=f"http://{address}:{self.port}")
        self.url = self.settings.public_url
        self.address = address

    def start(self) -> PublicServer:
        import socket
        with self.log.open("a") as sink:
            self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "web"],
                                         env=settings_env(self.settings), stdout=sink,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.address, self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("kumpul web did not start")


@pytest.fixture
def nat() -> Iterator[NatHome]:
    made = NatHome()
    try:
        yield made.create()
    finally:
        made.close()


def test_a_viewer_behind_a_strict_nat_plays_through_turn(
        nat: NatHome, browser: Browser, tmp_path: Path, redis_url: str) -> None:
    """UDP from the home reaches only coturn's port; Kumpul's media port is blocked. The
    watch page (ICE servers with a TURN REST API credential) plays the host's moving
    picture; the router dropped the page's direct attempts and passed its TURN traffic,
    coturn allocated the relay, and the server allocated none of its own."""
    coturn = Coturn(tmp_path, SECRET, address=nat.public).start()
    nat.allow_udp_only_to(nat.public, coturn.port)
    settings = make_settings(tmp_path, KUMPUL_REDIS_URL=redis_url, KUMPUL_TURN_SECRET=SECRET,
                             KUMPUL_ICE_SERVERS=coturn.urls[0],
                             KUMPUL_ICE_HOST_ADDRESSES=nat.public)
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True,
                   env=settings_env(settings), capture_output=True)
    server = PublicServer(settings.replace(port=free_port()), tmp_path / "server.log",
                          nat.public).start()
    stop = threading.Event()
    publishing = threading.Event()
    try:
        host = member_of_new_community(server, role="host")
        live = schedule(server, host)
        use_host_addresses([nat.public])  # this process's aiortc publisher: public side only

        async def host_publishes() -> None:
            async with httpx.AsyncClient(timeout=20) as client:
                publisher, made = await publish(client, str(live["whip_url"]),
                                                str(live["publish_token"]))
                assert made.status_code == 201, made.text
                publishing.set()
                await asyncio.to_thread(stop.wait)  # until the viewer is done
                await publisher.close()

        thread = threading.Thread(target=asyncio.run, args=(host_publishes(),), daemon=True)
        thread.start()
        assert publishing.wait(20)
        time.sleep(1)
        before = coturn.allocations()
        home = browser.browser_type.launch(  # a second Chromium, inside the home namespace
            executable_path=str(nat.wrapper(tmp_path, CHROMIUM)), headless=True,
            args=[a for a in CHROMIUM_ARGS if a != "--allow-loopback-in-peer-connection"])
        try:
            page = home.new_context().new_page()
            page.goto(f"{server.url}/login")
            page.get_by_label("Email").fill("member@example.com")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_load_state()
            page.goto(f"{server.url}/c/{host.slug}/live/{live['id']}")
            wait_until(page, "document.getElementById('host-video').videoWidth > 0", 30000)
            frames = int(page.evaluate(FRAMES, "host-video"))
            shot(page, "turn-nat-viewer")
        finally:
            home.close()
        counts = nat.udp_counts()
    finally:
        stop.set()
        use_host_addresses([])
        server.stop()
        coturn.stop()
    assert before == 0  # the publisher and the server allocated nothing
    assert frames > 20, frames  # about 2 s of moving video
    assert counts.get("dropped", 0) > 0, counts  # direct UDP toward Kumpul: tried, dropped
    assert counts.get("out", 0) > 0, counts
    assert counts.get("back", 0) > 100, counts  # the media came from coturn
    assert coturn.allocations() >= 1
