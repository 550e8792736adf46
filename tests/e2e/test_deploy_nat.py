"""The deployed shape, over the wire: Kumpul in a network namespace of its own behind a 1:1
NAT (its internal address unreachable from outside), announcing the outside address and
carrying every connection's media on one UDP port. A Chromium viewer on the watch page and
an aiortc viewer play without TURN; without the announcement the browser cannot connect."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser

from service.live.ice import use_host_addresses
from service.settings import Settings
from tests.conftest import PASSWORD, ServerProcess, free_port, make_settings, settings_env
from tests.e2e.conftest import wait_until
from tests.e2e.test_live import FRAMES
from tests.live import run_async
from tests.live.test_signalling import publish, schedule, watch
from tests.live.test_udpmux import udp_ports_of
from tests.netns import NatServer
from tests.remote import member_of_new_community

pytestmark = pytest.mark.e2e
MEDIA_PORT = 7882


class ServerBehindNat(ServerProcess):
    """`kumpul web` and a redis-server of its own inside the server namespace."""

    def __init__(self, nat: NatServer, settings: Settings, log: Path) -> None:
        super().__init__(settings, log)
        self.nat = nat
        self.settings = self.settings.replace(
            host="0.0.0.0", public_url=f"http://{nat.public}:{self.port}")  # noqa: S104
        self.url = self.settings.public_url
        self.redis: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerBehindNat:
        port = int(self.settings.redis_url.rsplit(":", 1)[1].split("/")[0])
        redis = shutil.which("redis-server") or "redis-server"
        self.redis = subprocess.Popen([*self.nat.prefix(), redis, "--port", str(port),
                                       "--bind", "127.0.0.1", "--save", ""],
                                      stdout=subprocess.DEVNULL)
        with self.log.open("a") as sink:
            self.proc = subprocess.Popen(
                [*self.nat.prefix(), sys.executable, "-m", "service.cli", "web"],
                env=settings_env(self.settings), stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # through the NAT, as anyone outside would
            try:
                with socket.create_connection((self.nat.public, self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"kumpul web did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        super().stop()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)


@pytest.fixture
def nat() -> Iterator[NatServer]:
    made = NatServer()
    try:
        yield made.create()
    finally:
        made.close()


def start_node(nat: NatServer, tmp_path: Path, name: str, *, announce: bool) -> ServerBehindNat:
    env = {"KUMPUL_DATABASE_URL": f"sqlite:///{tmp_path / 'kumpul.db'}",
           "KUMPUL_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "KUMPUL_RTC_UDP_PORT": str(MEDIA_PORT)}
    if announce:
        env["KUMPUL_ICE_PUBLIC_ADDRESSES"] = nat.public
    settings = make_settings(tmp_path, **env)
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True,
                   env=settings_env(settings), capture_output=True)
    return ServerBehindNat(nat, settings.replace(port=free_port()),
                           tmp_path / f"{name}.log").start()


def browser_frames(browser: Browser, server: ServerProcess, slug: str, session_id: str,
                   wait_ms: int) -> int:
    """Frames the watch page's host video played in 2 s, or -1 if it never started."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill("member@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    page.goto(f"{server.url}/c/{slug}/live/{session_id}")
    try:
        wait_until(page, "document.getElementById('host-video').videoWidth > 0", wait_ms)
    except TimeoutError:  # no picture came
        context.close()
        return -1
    frames = int(page.evaluate(FRAMES, "host-video"))
    context.close()
    return frames


class Host:
    """The host publishes from outside (aiortc) in a thread until told to stop."""

    def __init__(self, live: dict[str, Any]) -> None:
        self.live = live
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.answer = ""
        self.thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=20) as client:
            publisher, made = await publish(client, str(self.live["whip_url"]),
                                            str(self.live["publish_token"]))
            assert made.status_code == 201, made.text
            self.answer = made.text
            self.ready.set()
            await asyncio.to_thread(self.stop.wait)
            await publisher.close()

    def __enter__(self) -> Host:
        self.thread.start()
        assert self.ready.wait(20)
        time.sleep(1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(20)


def aiortc_viewer_frames(server: ServerProcess, live: dict[str, Any], token: str) -> tuple[
        int, str]:
    async def run() -> tuple[int, str]:
        async with httpx.AsyncClient(timeout=20) as client:
            viewer, answer = await watch(client, str(live["whep_url"]), token)
            assert answer.status_code == 201, answer.text
            await asyncio.sleep(4)
            frames = len(viewer.frames)
            await viewer.close()
            return frames, answer.text

    return run_async(run())


def test_behind_a_one_to_one_nat_media_flows_through_the_announced_port(
        nat: NatServer, browser: Browser, tmp_path: Path) -> None:
    use_host_addresses([nat.outside])  # this process's aiortc peers: the outside network
    try:
        server = start_node(nat, tmp_path, "announced", announce=True)
        try:
            host = member_of_new_community(server, role="host")
            live = schedule(server, host)
            with Host(live) as publisher:
                frames, answer = aiortc_viewer_frames(server, live, host.token)
                in_browser = browser_frames(browser, server, host.slug, live["id"], 30000)
                assert server.proc is not None
                ports = udp_ports_of(server.proc.pid)
        finally:
            server.stop()
        for sdp in (publisher.answer, answer):
            candidates = re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host", sdp)
            assert set(candidates) == {(nat.public, str(MEDIA_PORT))}, candidates
            assert nat.internal not in sdp
        assert frames > 60, frames  # about 4 s of the moving picture, decoded
        assert in_browser > 20, in_browser
        assert ports == {MEDIA_PORT}  # the node's only UDP socket

        # the same node without the announcement: its candidates name the internal address,
        # which the browser (whose own addresses are hidden behind mDNS names) can't reach
        server = start_node(nat, tmp_path, "unannounced", announce=False)
        try:
            live = schedule(server, host)
            with Host(live):
                assert browser_frames(browser, server, host.slug, live["id"], 10000) == -1
        finally:
            server.stop()
    finally:
        use_host_addresses([])
