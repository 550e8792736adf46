"""Page benchmark: every page of Kumpul at a phone's viewport with a cold cache, in Debian's
Chromium; and the share page's script weight.

Run from the repository root: `.venv/bin/python bench/pages.py [--reps 5]`.

- It starts its own `kumpul web` on a free port (SQLite in a temporary folder, Redis
  database 14 on 127.0.0.1:6379, or a redis-server of its own on a free port when none
  answers there) and, while seeding, one `kumpul worker` for ingest and reels.
- Seeding, through the API as clients would: an owner, a moderator, a host and a member;
  three 2-second stories (two waiting for review, one approved), a rendered and published
  reel, a draft reel, a scheduled session and a called-off one (for the highlights page),
  an open invite and a password reset link. The worker is stopped before measuring.
- Each page is loaded `--reps` times, each time in a new browser context (an empty HTTP
  cache: a cold load) holding the signed-in person's cookie, at 390x844 (2x, touch).
  Time is the navigation's `loadEventEnd` (request to the end of the load event, from the
  Navigation Timing entry); `ready` adds the page's own scripts settling: the first moment
  after load with no request in flight for 100 ms, as measured in the page. Loads are
  interleaved (rep 1 of every page, then rep 2, ...); medians are reported, and beside them
  the floor of the same browser loading `/healthz` (a JSON document, no subresources).
- `share_js_kb` is every script the share page loads (its two named scripts and every
  module they import), decoded KiB; `share_js_own_kb` only the two scripts the page names
  (tus-js-client and share.js), which is how the 95 KB of the issue was counted; the
  transferred (gzip) size is printed too.
- `--shots DIR` then saves every page, in the light and the dark scheme, to look at.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ports import free_port, wait_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
REDIS_DB = 14
PASSWORD = "benchmark password"  # noqa: S105 - throwaway accounts in a temporary folder
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                         "is_mobile": True, "has_touch": True}
# load time and the page's settling, read in the page from Navigation and Resource Timing
TIMING = """() => new Promise((resolve) => {
  const nav = performance.getEntriesByType("navigation")[0];
  let last = performance.now();
  const seen = () => performance.getEntriesByType("resource").length;
  let count = seen();
  const check = () => {
    const now = performance.now();
    if (seen() !== count) { count = seen(); last = now; }
    const settled = Math.max(nav.loadEventEnd, ...performance.getEntriesByType("resource")
      .map((r) => r.responseEnd));
    if (now - Math.max(last, settled) >= 100 && nav.loadEventEnd > 0) {
      resolve({ load: nav.loadEventEnd, dcl: nav.domContentLoadedEventEnd, ready: settled,
                bytes: nav.transferSize + performance.getEntriesByType("resource")
                  .reduce((sum, r) => sum + r.transferSize, 0) });
    } else setTimeout(check, 20);
  };
  check();
})"""
SCRIPTS = """() => performance.getEntriesByType("resource")
  .filter((r) => r.initiatorType === "script" || r.name.endsWith(".js"))
  .map((r) => ({ name: r.name, decoded: r.decodedBodySize, transferred: r.encodedBodySize }))"""



class Stack:
    """Redis (shared or our own), the web app and, while seeding, a worker."""

    def __init__(self, folder: Path) -> None:
        from redis import Redis

        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
        try:
            Redis.from_url(redis_url, socket_connect_timeout=1).ping()
        except Exception:
            port = free_port()
            self.procs.append(subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(port),
                 "--save", "", "--appendonly", "no", "--dir", str(folder)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(port)
            redis_url = f"redis://127.0.0.1:{port}/{REDIS_DB}"
        self.redis_url = redis_url
        Redis.from_url(redis_url).flushdb()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KUMPUL_")}
        self.env.update({
            "KUMPUL_DATA_DIR": str(folder / "data"), "KUMPUL_REDIS_URL": redis_url,
            "KUMPUL_PORT": str(self.port), "KUMPUL_PUBLIC_URL": self.url,
            "KUMPUL_LOG_LEVEL": "warning", "KUMPUL_LANGUAGE": "en",
            "KUMPUL_ICE_HOST_ADDRESSES": "127.0.0.1",
            "KUMPUL_SECRET_KEY": "bench-secret-key-that-is-long-enough-01234567"})
        self.cli(["migrate"])
        self.cli(["create-owner", "--email", "owner@example.com", "--name", "Owner",
                  "--password-stdin"], stdin=PASSWORD)
        self.start(["web"], "web.log")
        wait_port(self.port)
        self.worker = self.start(["worker", "ingest", "reels", "default"], "worker.log")

    def cli(self, args: list[str], stdin: str | None = None) -> None:
        subprocess.run([sys.executable, "-m", "service.cli", *args], env=self.env, check=True,
                       capture_output=True, input=stdin.encode() if stdin else None)

    def start(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", *args], env=self.env,
                                stdout=(self.folder / log).open("w"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop_worker(self) -> None:
        self.worker.terminate()
        self.worker.wait(30)

    def stop(self) -> None:
        from redis import Redis

        with contextlib.suppress(Exception):  # our own Redis may be gone already
            Redis.from_url(self.redis_url).flushdb()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def story(path: Path, size: str) -> bytes:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s={size}:r=30:d=2", "-f", "lavfi", "-i", "sine=f=440:d=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    return path.read_bytes()


def until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {seconds} s: {what}")
        time.sleep(0.5)


def seed(stack: Stack) -> dict[str, Any]:
    """Something on every page, made as clients make it."""
    from base64 import b64encode

    def b64(value: object) -> str:
        return b64encode(str(value).encode()).decode()

    with httpx.Client(base_url=stack.url, timeout=60) as http:
        def token(email: str) -> str:
            login = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            made = http.post("/api/tokens", json={"name": "bench"},
                             headers={"X-CSRF-Token": login.json()["csrf_token"]})
            http.cookies.clear()
            return str(made.json()["token"])

        def auth(tok: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tok}"}

        owner = auth(token("owner@example.com"))
        slug = http.post("/api/communities", json={"name": "Kopi Kita"},
                         headers=owner).json()["slug"]
        people = {}
        for role, email, name in (("moderator", "mod@example.com", "Mo Derator"),
                                  ("host", "host@example.com", "Hana Host"),
                                  ("member", "member@example.com", "Ana Member")):
            link = http.post(f"/api/communities/{slug}/invites", headers=owner,
                             json={"role": role}).json()["url"]
            http.post(f"/api/invites/{link.rsplit('/', 1)[1]}/accept", json={
                "email": email, "display_name": name, "password": PASSWORD})
            http.cookies.clear()
            people[role] = auth(token(email))
        for n, size in enumerate(("360x640", "640x360", "360x640")):
            data = story(stack.folder / f"story-{n}.mp4", size)
            meta = ",".join(f"{k} {b64(v)}" for k, v in (
                ("community", slug), ("release", 1), ("filename", f"story-{n}.mp4"),
                ("title", f"Story {n + 1}")))
            made = http.post("/api/uploads", headers={
                **people["member"], "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                "Upload-Metadata": meta})
            http.patch(made.headers["location"], content=data, headers={
                **people["member"], "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream"})
        mod = people["moderator"]

        def waiting() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = http.get(f"/api/communities/{slug}/review",
                                                   headers=mod).json()["clips"]
            return found

        until(lambda: len(waiting()) == 3, 180, "three stories ready for review")
        clip = waiting()[0]["id"]
        http.post(f"/api/communities/{slug}/review/{clip}/approve", headers=mod, json={})
        reel = http.post(f"/api/communities/{slug}/reels", headers=mod,
                         json={"title": "Morning pour-overs"}).json()
        base = f"/api/communities/{slug}/reels/{reel['id']}"
        http.patch(base, headers=mod, json={"items": [{"clip_id": clip}],
                                            "title_card": {"text": "Morning pour-overs",
                                                           "color": "#1d3557"}})
        http.post(f"{base}/render", headers=mod)
        until(lambda: http.get(base, headers=mod).json()["state"] == "rendered", 240,
              "the reel renders")
        published = http.post(f"{base}/publish", headers=mod).json()
        draft = http.post(f"/api/communities/{slug}/reels", headers=mod,
                          json={"title": "Next one"}).json()
        host = people["host"]
        session = http.post(f"/api/communities/{slug}/live", headers=host,
                            json={"title": "Tasting night", "description": "Beans"}).json()
        called_off = http.post(f"/api/communities/{slug}/live", headers=host,
                               json={"title": "Called off"}).json()
        http.post(f"/api/communities/{slug}/live/{called_off['id']}/end", headers=host)
        invite = http.post(f"/api/communities/{slug}/invites", headers=owner,
                           json={"role": "member"}).json()["url"]
        members = http.get(f"/api/communities/{slug}/members", headers=owner).json()["members"]
        member_id = next(m["user_id"] for m in members if m["display_name"] == "Ana Member")
        reset = http.post(f"/api/communities/{slug}/members/{member_id}/reset-link",
                          headers=owner).json()["url"]
    return {"slug": slug, "reel": reel["id"], "reel_slug": published["slug"],
            "draft": draft["id"], "session": session["id"], "ended": called_off["id"],
            "invite": invite, "reset": reset}


def pages(world: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    """(who, name, path) of every page, in the states people first see them."""
    s = world["slug"]
    c = f"/c/{s}"
    return [
        (None, "login", "/login"), (None, "forgot password", "/reset"),
        (None, "invite sign-up", urlparse(world["invite"]).path),
        (None, "choose a new password", urlparse(world["reset"]).path),
        (None, "public reel", f"/r/{world['reel_slug']}"),
        (None, "embed", f"/r/{world['reel_slug']}/embed"),
        ("member", "home", "/"), ("member", "community", c), ("member", "account", "/account"),
        ("member", "notifications", "/notifications"), ("member", "share", f"{c}/share"),
        ("member", "my stories", f"{c}/stories"),
        ("member", "watch (upcoming)", f"{c}/live/{world['session']}"),
        ("member", "watch (ended)", f"{c}/live/{world['ended']}"),
        ("moderator", "review", f"{c}/review"), ("moderator", "reels", f"{c}/reels"),
        ("moderator", "composer (published)", f"{c}/reels/{world['reel']}"),
        ("moderator", "composer (draft)", f"{c}/reels/{world['draft']}"),
        ("moderator", "highlights", f"{c}/live/{world['ended']}/highlights"),
        ("host", "studio", f"{c}/live/{world['session']}/studio"),
        ("host", "scheduled", f"{c}/live/{world['session']}/scheduled"),
        ("owner", "admin", f"{c}/admin"), ("owner", "outbox", "/admin/outbox"),
        ("owner", "webhooks", f"{c}/admin/webhooks"),
    ]


EMAILS = {"member": "member@example.com", "moderator": "mod@example.com",
          "host": "host@example.com", "owner": "owner@example.com"}


def measure(stack: Stack, world: dict[str, Any], reps: int, shots: Path | None) -> tuple[
        dict[str, dict[str, list[float]]], list[dict[str, Any]]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, dict[str, list[float]]] = {}
    scripts: list[dict[str, Any]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        states: dict[str | None, Any] = {None: None}
        for person, email in EMAILS.items():  # each signs in once; their cookie is reused
            context = browser.new_context(**PHONE)
            page = context.new_page()
            page.goto(f"{stack.url}/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state("load")
            states[person] = context.storage_state()
            context.close()
        listed = [(None, "floor: /healthz", "/healthz"), *pages(world)]
        for rep in range(reps):
            for who, name, path in listed:
                context = browser.new_context(**PHONE, storage_state=states.get(who))
                page = context.new_page()
                response = page.goto(stack.url + path, wait_until="load")
                if response is None or response.status != 200:
                    raise RuntimeError(f"{name}: {path} answered "
                                       f"{response.status if response else 'nothing'}")
                timing = page.evaluate(TIMING)
                row = found.setdefault(name, {"load": [], "dcl": [], "ready": [], "kb": []})
                row["load"].append(timing["load"])
                row["dcl"].append(timing["dcl"])
                row["ready"].append(timing["ready"])
                row["kb"].append(timing["bytes"] / 1024)
                if name == "share" and rep == 0:
                    scripts = page.evaluate(SCRIPTS)
                context.close()
            print(f"  repetition {rep + 1}/{reps} done", file=sys.stderr)
        if shots is not None:  # after the timing: every page, light and dark, to look at
            shots.mkdir(parents=True, exist_ok=True)
            for scheme in ("light", "dark"):
                for who, name, path in listed[1:]:
                    context = browser.new_context(**PHONE, storage_state=states.get(who),
                                                  color_scheme=scheme)
                    page = context.new_page()
                    page.goto(stack.url + path, wait_until="load")
                    page.wait_for_timeout(500)
                    slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
                    page.screenshot(path=str(shots / f"{scheme}-{slug}.png"), full_page=True)
                    context.close()
        browser.close()
    return found, scripts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--shots", type=Path, default=None,
                        help="also save every page, light and dark, as PNGs in this folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kumpul-bench-pages-"))
    stack = Stack(folder)
    try:
        started = time.monotonic()
        world = seed(stack)
        stack.stop_worker()  # nothing else runs while pages load
        print(f"seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)
        found, scripts = measure(stack, world, args.reps, args.shots)
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)

    median = {name: {k: statistics.median(v) for k, v in row.items()}
              for name, row in found.items()}
    print(f"Pages at 390x844 (phone), cold cache, Chromium {CHROMIUM}; median of {args.reps} "
          "interleaved loads each")
    load = os.getloadavg()[0]
    print(f"({os.cpu_count()} cores; load average {load:.2f} at the end: above about 1 the "
          "machine was not quiet and the figures are a check, not a measurement)\n")
    print(f"{'page':28} {'load ms':>8} {'DCL ms':>8} {'ready ms':>9} {'KiB':>7}")
    for name, row in median.items():
        print(f"{name:28} {row['load']:8.0f} {row['dcl']:8.0f} {row['ready']:9.0f} "
              f"{row['kb']:7.1f}")
    measured = {k: v for k, v in median.items() if not k.startswith("floor")}
    slowest = max(measured, key=lambda k: measured[k]["load"])
    print(f"\nslowest: {slowest} ({measured[slowest]['load']:.0f} ms); floor (/healthz): "
          f"{median['floor: /healthz']['load']:.0f} ms")
    print("\nscripts of the share page:")
    for s in scripts:
        print(f"  {s['name'].rsplit('/', 1)[1]:40} {s['decoded'] / 1024:7.1f} KiB decoded "
              f"{s['transferred'] / 1024:6.1f} KiB sent")
    total = sum(s["decoded"] for s in scripts) / 1024
    own = sum(s["decoded"] for s in scripts
              if "/tus-" in s["name"] or "/share." in s["name"]) / 1024
    sent = sum(s["transferred"] for s in scripts) / 1024
    print(f"  all: {total:.1f} KiB decoded, {sent:.1f} KiB sent; the two it names: {own:.1f} KiB")
    ready_max = max(v["ready"] for v in measured.values())
    print(f"RESULT page_load_ms_max={measured[slowest]['load']:.0f} share_js_kb={total:.1f} "
          f"share_js_own_kb={own:.1f} share_js_sent_kb={sent:.1f} "
          f"page_ready_ms_max={ready_max:.0f} pages={len(measured)} "
          f"floor_ms={median['floor: /healthz']['load']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
