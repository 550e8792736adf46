"""A real HAProxy (Debian's) with deploy/haproxy.cfg in front of two node processes: requests
reach both nodes, a room WebSocket chat works across them, and a node that is SIGKILLed is
taken out by the health check on /readyz while requests keep being answered."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from redis import Redis

from service.settings import Settings
from tests.conftest import ServerProcess, free_port, wait_for_port
from tests.live import run_async
from tests.live.test_room_channel import Socket, cookie_of, join_member
from tests.live.test_signalling import schedule
from tests.remote import member_of_new_community

HAPROXY = "/usr/sbin/haproxy"
ROOT = Path(__file__).resolve().parents[2]


def config_for(port: int, nodes: list[ServerProcess]) -> str:
    """deploy/haproxy.cfg as shipped, with this test's address and nodes in place of the
    compose ones."""
    text = (ROOT / "deploy" / "haproxy.cfg").read_text()
    text = text.replace("    bind :8000", f"    bind 127.0.0.1:{port}")
    servers = "".join(f"    server node{i} 127.0.0.1:{n.port}\n" for i, n in enumerate(nodes))
    text, count = re.subn(r"(    server app\d .*\n)+", servers, text)
    assert count == 1
    return text


@pytest.fixture
def proxied(two_nodes: tuple[ServerProcess, ServerProcess],
            tmp_path: Path) -> Iterator[tuple[str, ServerProcess, ServerProcess]]:
    assert shutil.which(HAPROXY), "scripts/bootstrap --dev installs Debian's haproxy"
    a, b = two_nodes
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(config_for(port, [a, b]))
    checked = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with (tmp_path / "haproxy.log").open("w") as log:
        proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=log,
                                 stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}", a, b
    finally:
        proxy.terminate()
        proxy.wait(10)


def answered_by(url: str, count: int) -> list[str]:
    """The node ids that answered `count` readiness requests (this machine is an operator)."""
    found = []
    for _ in range(count):
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 200, ready.text
        found.append(ready.json()["node"])
    return found


def test_haproxy_in_front_of_two_nodes(proxied: tuple[str, ServerProcess, ServerProcess],
                                       settings: Settings) -> None:
    url, a, b = proxied
    deadline = time.monotonic() + 10  # both checked up (rise 2 at 1 s)
    while len(set(answered_by(url, 10))) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(set(answered_by(url, 10))) == 2

    host = member_of_new_community(a, role="host")
    live = schedule(a, host)
    ana = join_member(a, host.owner_token, host.slug, "ana@example.com", "Ana")
    budi = join_member(a, host.owner_token, host.slug, "budi@example.com", "Budi")
    del budi
    host_cookie = cookie_of(a, "member@example.com")

    async def chat() -> dict[str, Any]:
        from websockets.asyncio.client import connect

        socks = []
        for cookie in (host_cookie, ana):  # leastconn: the second goes to the other node
            ws = await connect(url.replace("http://", "ws://") + f"/api/live/{live['id']}/room",
                               additional_headers={"Origin": url,
                                                   "Cookie": f"kumpul_session={cookie}"})
            socks.append(Socket(ws))
        for sock in socks:
            await sock.expect("hello")
        await socks[1].send(type="chat", text="through the proxy")
        got = [(await s.expect("chat"))["text"] for s in socks]
        nodes = {json.loads(v)["node"] for v in Redis.from_url(settings.redis_url).hvals(
            f"kumpul:room:{live['id']}:presence")}
        for sock in socks:
            await sock.ws.close()
        return {"got": got, "nodes": nodes}

    out = run_async(chat())
    assert out["got"] == ["through the proxy"] * 2
    assert len(out["nodes"]) == 2, "the two sockets went to different nodes"

    b.kill()
    killed = time.monotonic()
    survivors: list[str] = []
    failures = 0
    while time.monotonic() - killed < 8:
        try:
            survivors += answered_by(url, 1)
        except (AssertionError, httpx.HTTPError):
            failures += 1
        time.sleep(0.1)
    # redispatch answers even in the seconds before the check takes node B out
    last = answered_by(url, 20)
    assert len(set(last)) == 1 and failures == 0, (failures, last)
