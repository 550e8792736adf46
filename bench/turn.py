"""What an unreachable STUN/TURN server costs a live room: WHIP and WHEP POST latency and
server shutdown time with KUMPUL_ICE_SERVERS pointing at an address that never answers,
against the same server with no ICE servers (the baseline), interleaved, medians of 5.

    .venv/bin/python bench/turn.py

Starts its own Redis, a SQLite database and `kumpul web` processes; aiortc clients.
RESULT keys: post_ms_none post_ms_unreachable extra_post_ms shutdown_s_unreachable
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import ServerProcess, free_port, make_settings, settings_env  # noqa: E402
from tests.live.test_signalling import publish, schedule, watch  # noqa: E402
from tests.remote import member_of_new_community  # noqa: E402

ROUNDS = 5


def run_round(folder: Path, redis_url: str, ice: str) -> tuple[float, float, float]:
    """(WHIP POST ms, WHEP POST ms, shutdown s) for one fresh server."""
    env = {"KUMPUL_REDIS_URL": redis_url, "KUMPUL_ICE_HOST_ADDRESSES": "127.0.0.1"}
    if ice:
        env.update(KUMPUL_ICE_SERVERS=ice, KUMPUL_TURN_SECRET="bench-secret")  # noqa: S106
    settings = make_settings(folder, **env)
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], check=True,
                   env=settings_env(settings), capture_output=True)
    server = ServerProcess(settings, folder / "server.log").start()
    try:
        host = member_of_new_community(server, role="host")
        live = schedule(server, host)

        async def posts() -> tuple[float, float]:
            async with httpx.AsyncClient(timeout=60) as client:
                started = time.perf_counter()
                publisher, made = await publish(client, live["whip_url"], live["publish_token"])
                whip = time.perf_counter() - started
                assert made.status_code == 201, made.text
                for _ in range(50):
                    started = time.perf_counter()
                    viewer, answer = await watch(client, live["whep_url"], host.token)
                    whep = time.perf_counter() - started
                    if answer.status_code == 201:
                        break
                    await viewer.close()
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1)
                await viewer.close()
                await publisher.close()
                return whip * 1000, whep * 1000

        whip_ms, whep_ms = asyncio.run(posts())
    finally:
        started = time.perf_counter()
        server.stop()
        shutdown = time.perf_counter() - started
    return whip_ms, whep_ms, shutdown


def main() -> int:
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes, never answers
    silent.bind(("127.0.0.1", 0))
    where = f"127.0.0.1:{silent.getsockname()[1]}"
    unreachable = f"stun:{where},turn:{where}?transport=udp"
    work = Path(tempfile.mkdtemp(prefix="kumpul-bench-turn-"))
    results: dict[str, list[tuple[float, float, float]]] = {"none": [], "unreachable": []}
    try:
        time.sleep(0.5)
        redis_url = f"redis://127.0.0.1:{port}/0"
        for number in range(ROUNDS):
            for name, ice in (("none", ""), ("unreachable", unreachable)):
                results[name].append(run_round(work / f"{name}-{number}", redis_url, ice))
    finally:
        silent.close()
        redis.terminate()
        redis.wait()
        shutil.rmtree(work, ignore_errors=True)
    rows = {name: [statistics.median(r[i] for r in runs) for i in range(3)]
            for name, runs in results.items()}
    print(f"{'ICE servers':<14}{'WHIP POST ms':>14}{'WHEP POST ms':>14}{'shutdown s':>12}")
    for name, (whip, whep, down) in rows.items():
        print(f"{name:<14}{whip:>14.1f}{whep:>14.1f}{down:>12.2f}")
    post_none = (rows["none"][0] + rows["none"][1]) / 2
    post_unreachable = (rows["unreachable"][0] + rows["unreachable"][1]) / 2
    print(f"machine: nproc={os.cpu_count()}, medians of {ROUNDS} interleaved rounds")
    print(f"RESULT post_ms_none={post_none:.1f} post_ms_unreachable={post_unreachable:.1f} "
          f"extra_post_ms={post_unreachable - post_none:.1f} "
          f"shutdown_s_unreachable={rows['unreachable'][2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
