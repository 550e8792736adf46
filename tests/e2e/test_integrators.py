"""A brand's own site (another origin) embeds Kumpul: in Chromium, tus-js-client from npm
uploads a story and the page publishes over WHIP with a stream key, reading `Location` and
`Link` across origins; a site that isn't listed in KUMPUL_CORS_ORIGINS is refused by the
browser."""

from __future__ import annotations

import base64
import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser

from tests import media_files
from tests.conftest import ServerProcess, free_port, make_settings, settings_env
from tests.live.test_signalling import schedule
from tests.remote import member_of_new_community
from tests.turnserver import Coturn

pytestmark = pytest.mark.e2e

CLIENTS = Path(__file__).with_name("clients")
TUS_JS = CLIENTS / "node_modules" / "tus-js-client" / "dist" / "tus.min.js"
PAGE = """<!doctype html><meta charset="utf-8"><title>Brand site</title>
<script src="/tus.min.js"></script><h1>Share your ride</h1>"""

UPLOAD = """async ([endpoint, token, slug, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const file = new Blob([bytes], { type: "video/mp4" });
  return await new Promise((resolve) => {
    const upload = new tus.Upload(file, {
      endpoint, chunkSize: 64 * 1024, retryDelays: [],
      headers: { Authorization: `Bearer ${token}` },
      metadata: { community: slug, release: "1", filename: "ride.mp4",
                  title: "From the brand site" },
      onError: (error) => resolve({ error: String(error) }),
      onSuccess: () => resolve({ url: upload.url }),
    });
    upload.start();
  });
}"""

PUBLISH = """async ([whip, token]) => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(whip, { method: "POST", body: pc.localDescription.sdp,
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` } });
  const out = { status: response.status, location: response.headers.get("Location"),
                link: response.headers.get("Link") };
  if (response.status !== 201) return out;
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  const start = Date.now();
  while (pc.connectionState !== "connected" && Date.now() - start < 15000) {
    await new Promise((r) => setTimeout(r, 100));
  }
  out.state = pc.connectionState;
  const stop = await fetch(new URL(out.location, whip), { method: "DELETE",
    headers: { Authorization: `Bearer ${token}` } });
  out.deleted = stop.status;
  pc.close();
  stream.getTracks().forEach((t) => t.stop());
  return out;
}"""


class BrandSite:
    """A static site on another origin (http://localhost:PORT; Kumpul is on 127.0.0.1)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "index.html").write_text(PAGE)
        shutil.copy(TUS_JS, folder / "tus.min.js")
        self.port = free_port()
        handler = functools.partial(_Quiet, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.origin = f"http://localhost:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def brand(tmp_path: Path) -> Iterator[BrandSite]:
    if not TUS_JS.exists():
        pytest.fail("tus-js-client is missing: scripts/bootstrap --dev runs npm ci in "
                    "tests/e2e/clients")
    site = BrandSite(tmp_path / "brand")
    try:
        yield site
    finally:
        site.close()


def _kumpul(tmp_path: Path, redis_url: str, origins: str, **env: str) -> ServerProcess:
    settings = make_settings(tmp_path, KUMPUL_REDIS_URL=redis_url, KUMPUL_CORS_ORIGINS=origins,
                             KUMPUL_ICE_HOST_ADDRESSES="127.0.0.1", **env)
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True,
                   env=settings_env(settings), capture_output=True)
    return ServerProcess(settings, tmp_path / "server.log").start()


def test_a_brand_site_uploads_with_tus_js_client_and_publishes_over_whip(
        browser: Browser, brand: BrandSite, tmp_path: Path, redis_url: str) -> None:
    """Listed origin: tus-js-client's preflights pass, the story arrives whole; a WHIP
    publish from the page answers 201 with `Location` and the TURN `Link` readable by the
    page's script, connects, and its DELETE (another preflight) stops it."""
    coturn = Coturn(tmp_path, "brand-turn-secret").start()
    server = _kumpul(tmp_path, redis_url, brand.origin, KUMPUL_TURN_SECRET="brand-turn-secret",
                     KUMPUL_ICE_SERVERS=coturn.urls[0])
    try:
        member = member_of_new_community(server, role="host")
        video = media_files.story_mp4(tmp_path / "ride.mp4", 2)
        data = base64.b64encode(video.read_bytes()).decode()
        page = browser.new_context().new_page()
        page.goto(brand.origin + "/")
        uploaded = page.evaluate(UPLOAD, [f"{server.url}/api/uploads", member.token,
                                          member.slug, data])
        assert "url" in uploaded, uploaded
        assert uploaded["url"].startswith(f"{server.url}/api/uploads/")
        mine = httpx.get(f"{server.url}/api/communities/{member.slug}/clips/mine",
                         headers=member.auth).json()["clips"]
        assert [(c["state"], c["title"]) for c in mine] == [("uploaded", "From the brand site")]

        live = schedule(server, member)
        published = page.evaluate(PUBLISH, [live["whip_url"], live["publish_token"]])
        assert published["status"] == 201, published
        assert published["location"].startswith(f"/api/live/{live['id']}/whip/")
        assert published["link"].startswith(f"<{coturn.urls[0]}>; rel=\"ice-server\"; "
                                            "username=\"")
        assert published["state"] == "connected" and published["deleted"] == 200, published
    finally:
        server.stop()
        coturn.stop()


def test_a_site_that_is_not_listed_is_refused_by_the_browser(
        browser: Browser, brand: BrandSite, tmp_path: Path, redis_url: str) -> None:
    """Same page, Kumpul listing another origin: the preflight gets no
    Access-Control-Allow-Origin, so tus-js-client fails before any upload exists."""
    server = _kumpul(tmp_path, redis_url, "https://other-brand.example")
    try:
        member = member_of_new_community(server)
        page = browser.new_context().new_page()
        page.goto(brand.origin + "/")
        refused = page.evaluate(UPLOAD, [f"{server.url}/api/uploads", member.token,
                                         member.slug, base64.b64encode(b"x" * 100).decode()])
        assert "error" in refused, refused
        mine = httpx.get(f"{server.url}/api/communities/{member.slug}/clips/mine",
                         headers=member.auth).json()["clips"]
        assert mine == []
    finally:
        server.stop()
