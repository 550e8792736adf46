"""The node registry on a real Redis: nodes register and beat, carry their load, leave at
once when stopped, and a node that stops beating is reported lost to every other node."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from service.cluster.nodes import LOST_SECONDS, NODES_KEY, WATCH_SECONDS, Node, Nodes, node_key
from tests.live import run_async


def node(name: str, port: int) -> Node:
    return Node(id=name, url=f"http://127.0.0.1:{port}", ice_addresses=("10.0.0.5",),
                rtc_udp_port=7882 if port == 8101 else None, viewers=0, rooms=0, cpu=0.0,
                beat_at=0.0)


def test_nodes_register_report_and_leave(redis_url: str) -> None:
    async def run() -> dict[str, Any]:
        redis = Redis.from_url(redis_url, decode_responses=True)
        a, b = Nodes(redis, node("node-a", 8101)), Nodes(redis, node("node-b", 8102))
        await a.start()
        await b.start()
        a.report(viewers=12, rooms=1)
        await asyncio.sleep(2.3)  # one beat carries the counts
        out: dict[str, Any] = {"alive": sorted(n.id for n in await b.alive())}
        found = await b.get("node-a")
        out["a"] = found
        out["ttl"] = await redis.pttl(node_key("node-a"))
        await a.stop()
        out["after_stop"] = sorted(n.id for n in await b.alive())
        out["set"] = sorted(await redis.smembers(NODES_KEY))
        out["missing"] = await b.get("node-a")
        await b.stop()
        await redis.aclose()
        return out

    out = run_async(run())
    assert out["alive"] == ["node-a", "node-b"]
    found = out["a"]
    assert found is not None and found.url == "http://127.0.0.1:8101"
    assert found.ice_addresses == ("10.0.0.5",) and found.rtc_udp_port == 7882
    assert (found.viewers, found.rooms) == (12, 1)
    assert 0.0 <= found.cpu <= 1.0 and abs(found.beat_at - time.time()) < 5
    assert 3000 < out["ttl"] <= 6000
    assert out["after_stop"] == ["node-b"] and out["set"] == ["node-b"]
    assert out["missing"] is None


def test_a_node_that_stops_beating_is_lost_on_every_other_node(redis_url: str) -> None:
    """Three nodes; one stops beating without deregistering (as after SIGKILL). Both others
    are told its id, once each, within LOST_SECONDS and a watch; it leaves `alive`."""
    async def run() -> dict[str, Any]:
        redis = Redis.from_url(redis_url)
        nodes = [Nodes(redis, node(f"node-{i}", 8200 + i)) for i in range(3)]
        told: list[tuple[str, str, float]] = []
        for watcher in nodes[1:]:
            def tell(lost: str, me: str = watcher.me.id) -> Any:
                async def record() -> None:
                    told.append((me, lost, time.monotonic()))
                return record()
            watcher.on_lost(tell)
        for each in nodes:
            await each.start()
        await asyncio.sleep(1.0)
        dying = nodes[0]
        assert dying._task is not None
        dying._task.cancel()  # no more beats, no deregistration
        died = time.monotonic()
        await asyncio.sleep(LOST_SECONDS + WATCH_SECONDS + 2.5)
        out = {"told": [(me, lost, at - died) for me, lost, at in told],
               "alive": sorted(n.id for n in await nodes[1].alive())}
        for each in nodes[1:]:
            await each.stop()
        await redis.aclose()
        return out

    out = run_async(run())
    assert sorted((me, lost) for me, lost, _ in out["told"]) == [
        ("node-1", "node-0"), ("node-2", "node-0")]
    assert all(after <= LOST_SECONDS + WATCH_SECONDS + 0.5 for _, _, after in out["told"]), out
    assert out["alive"] == ["node-1", "node-2"]
