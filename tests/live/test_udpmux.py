"""One UDP port for a node's live media: every connection shares it, and nothing else binds
UDP; a port taken already stops the node with a clear message."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from service.settings import Settings
from tests.conftest import ServerProcess, free_port, settings_env
from tests.live import run_async
from tests.live.test_signalling import publish, schedule, watch
from tests.remote import member_of_new_community


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def udp_ports_of(pid: int) -> set[int]:
    """The local ports of every UDP socket process `pid` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def mux_server(settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    local = settings.replace(ice_host_addresses=("127.0.0.1",), rtc_udp_port=free_udp_port())
    server = ServerProcess(local, tmp_path / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_every_connection_shares_the_one_port(mux_server: ServerProcess) -> None:
    """A publisher and three viewers play through one UDP port: every answer's candidate
    names it, viewers decode the picture, and the node binds no other UDP port."""
    port = mux_server.settings.rtc_udp_port
    host = member_of_new_community(mux_server, role="host")
    live = schedule(mux_server, host)

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=20) as client:
            publisher, made = await publish(client, live["whip_url"], live["publish_token"])
            assert made.status_code == 201, made.text
            viewers = []
            answers = [made.text]
            for _ in range(3):
                for _ in range(50):  # live once the publisher's first frames arrive
                    viewer, answer = await watch(client, live["whep_url"], host.token)
                    if answer.status_code != 409:
                        break
                    await viewer.close()
                    await asyncio.sleep(0.2)
                assert answer.status_code == 201, answer.text
                viewers.append(viewer)
                answers.append(answer.text)
            await asyncio.sleep(4)
            assert mux_server.proc is not None
            ports = udp_ports_of(mux_server.proc.pid)
            frames = [len(v.frames) for v in viewers]
            for viewer in viewers:
                await viewer.close()
            await publisher.close()
            return {"answers": answers, "ports": ports, "frames": frames}

    out = run_async(run())
    for answer in out["answers"]:
        candidates = re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host", answer)
        assert candidates and all(p == str(port) for _, p in candidates), answer
    assert out["ports"] == {port}
    assert all(count > 60 for count in out["frames"]), out["frames"]


def test_a_taken_port_stops_the_node_with_a_clear_message(settings: Settings,
                                                          tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("0.0.0.0", 0))  # noqa: S104
        port = taken.getsockname()[1]
        node = settings.replace(rtc_udp_port=port, port=free_port())
        done = subprocess.run([sys.executable, "-m", "service.cli", "web"],
                              env=settings_env(node), capture_output=True, text=True,
                              timeout=60)
    assert done.returncode != 0
    assert f"can't bind the live-room UDP port {port}" in done.stderr
    assert "KUMPUL_RTC_UDP_PORT" in done.stderr
