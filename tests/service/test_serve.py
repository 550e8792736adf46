"""`kumpul serve` on a fresh folder: Redis, worker, app, and a first-owner link that works."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from redis import Redis

from tests.conftest import PASSWORD, child_pids, free_port, wait_for_port

SETUP = re.compile(r"First owner: open (\S+/setup/\S+)")


CORES = len(os.sched_getaffinity(0))
REDIS_STARTED = re.compile(r"started redis-server for Kumpul at (\S+)")


@pytest.fixture
def nodes() -> str:
    """KUMPUL_WEB_NODES for `served`: empty is the default (one node per core)."""
    return ""


@pytest.fixture
def served(tmp_path: Path, nodes: str) -> Iterator[tuple[str, str, subprocess.Popen[str], Path]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMPUL_")}
    env.update({"KUMPUL_PORT": str(port), "KUMPUL_PUBLIC_URL": f"http://127.0.0.1:{port}",
                # nothing listens here, so serve must start a redis-server of its own
                "KUMPUL_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                "KUMPUL_WEB_NODES": nodes})
    out = tmp_path / "serve.out"
    with out.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], cwd=tmp_path,
                                env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, 60)
        match = SETUP.search(out.read_text())
        assert match, out.read_text()
        yield f"http://127.0.0.1:{port}", match.group(1), proc, out
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)


def test_serve_from_a_fresh_folder(served: tuple[str, str, subprocess.Popen[str], Path],
                                   tmp_path: Path) -> None:
    """The printed one-time link makes the first owner and leads to a working admin page;
    out of the box Kumpul speaks Indonesian, to a browser that asks for nothing else."""
    base, setup_link, proc, out = served
    assert "started redis-server" in out.read_text()
    kids = child_pids(proc.pid)
    web = CORES if CORES > 1 else 0  # one node per core; a single one runs in serve itself
    assert len(kids) == 5 + web  # redis-server, three workers on their lanes, the scheduler
    lanes = sorted(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[3:-1]
                   for pid in kids if b"workers\0" in Path(f"/proc/{pid}/cmdline").read_bytes())
    assert lanes == [[b"heavy", b"live", b"default"], [b"ingest", b"default"],
                     [b"reels", b"ingest", b"default"]]
    ready = httpx.get(f"{base}/readyz").json()
    assert ready["status"] == "ready", ready

    with httpx.Client(base_url=base, follow_redirects=True) as browser:
        assert "Selamat datang di Kumpul" in browser.get(setup_link).text
        page = browser.post(setup_link, data={
            "display_name": "Olu Owner", "email": "olu@example.com", "password": PASSWORD,
            "community": "Morning Coffee"})
        assert page.status_code == 200 and page.url.path == "/c/morning-coffee/admin"
        assert "Undang orang" in page.text and "Olu Owner" in page.text
        assert '<html lang="id" data-tz="Asia/Jakarta"' in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        made = browser.post("/c/morning-coffee/admin/invites", data={
            "csrf_token": csrf.group(1), "role": "member", "max_uses": "3", "days": "7"})
        assert made.status_code == 200 and "/invite/" in made.text
    with httpx.Client(base_url=base) as other:
        again = other.get(setup_link, headers={"accept": "text/html"})
        assert again.status_code == 410 and "sudah dipakai" in again.text

    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    time.sleep(0.5)
    assert not any(Path(f"/proc/{pid}").exists() and
                   "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
                   for pid in kids)
    assert (tmp_path / "data" / "kumpul.db").is_file()
    assert (tmp_path / "data" / "redis").is_dir()


def node_ids(base: str, requests: int = 40) -> set[str]:
    """The nodes that answered `requests` requests, each on a new connection."""
    seen = set()
    for _ in range(requests):
        ready = httpx.get(f"{base}/readyz").json()  # loopback: an operator, told the node
        assert ready["status"] == "ready", ready
        seen.add(ready["node"])
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("nodes", ["2"])
def test_serve_starts_nodes_behind_one_address(
        served: tuple[str, str, subprocess.Popen[str], Path]) -> None:
    """With KUMPUL_WEB_NODES=2, two web processes answer on the one printed address (the
    kernel spreads connections over them) and both are registered nodes, each reachable on
    its own node port. A node that dies is started again and registers anew."""
    base, _, proc, out = served
    redis_url = REDIS_STARTED.search(out.read_text())
    assert redis_url, out.read_text()
    web = [pid for pid in child_pids(proc.pid)
           if b"web\0--share-port" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(web) == 2 and "2 web nodes answer at" in out.read_text()
    deadline = time.monotonic() + 30
    while len(seen := node_ids(base)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(seen) == 2

    redis = Redis.from_url(redis_url.group(1), decode_responses=True)
    assert set(redis.smembers("kumpul:nodes")) == seen
    urls = {str(redis.hget(f"kumpul:node:{n}", "url")) for n in seen}
    assert len(urls) == 2 and all(u.startswith("http://127.0.0.1:") for u in urls)
    for url in urls:  # each node alone on its node port
        assert httpx.get(url + "/readyz").json()["node"] in seen

    os.kill(web[0], signal.SIGKILL)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        now = node_ids(base, 20)
        if len(now) == 2 and now != seen:
            break
        time.sleep(0.5)
    assert len(now) == 2 and len(now & seen) == 1, (seen, now)
