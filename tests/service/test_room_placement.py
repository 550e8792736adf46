"""Where rooms live across nodes, in a real Redis (`service/cluster/placement.py`): one
origin per room, a viewer cap that holds over every node, counts per node, and a lost
node's share removed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis

from service.cluster.placement import Placement
from tests.conftest import run_async

T = TypeVar("T")


def run(redis_url: str, work: Callable[[Redis], Awaitable[T]]) -> T:
    async def main() -> T:
        redis = Redis.from_url(redis_url)
        try:
            return await work(redis)
        finally:
            await redis.aclose()

    return run_async(main())


def test_one_origin_per_room_until_released_or_forgotten(redis_url: str) -> None:
    async def work(redis: Redis) -> dict[str, object]:
        a, b = Placement(redis, "node-a"), Placement(redis, "node-b")
        out: dict[str, object] = {"first": await a.claim("s1"), "second": await b.claim("s1")}
        out["b_renews"] = await b.renew(["s1"])  # not b's: reported lost to b
        out["a_renews"] = await a.renew(["s1"])
        await b.release("s1")  # not b's: nothing happens
        out["after_b_release"] = await a.origin("s1")
        await a.release("s1")
        out["after_a_release"] = await a.origin("s1")
        await a.claim("s2")
        await b.forget("node-a")  # a stopped beating
        out["after_forget"] = await b.claim("s2")
        out["ttl"] = await redis.ttl("kumpul:live:s2:origin")
        return out

    out = run(redis_url, work)
    assert out["first"] == out["second"] == "node-a"
    assert out["b_renews"] == ["s1"] and out["a_renews"] == []
    assert out["after_b_release"] == "node-a"
    assert out["after_a_release"] is None
    assert out["after_forget"] == "node-b"
    assert 0 < int(str(out["ttl"])) <= 15


def test_the_viewer_cap_holds_over_every_node(redis_url: str) -> None:
    """Cap 5: node a holds 3, node b may take 2 more, never a third; a's count going down
    frees a place; a forgotten node's viewers stop counting."""
    async def work(redis: Redis) -> dict[str, object]:
        a, b = Placement(redis, "node-a"), Placement(redis, "node-b")
        out: dict[str, object] = {}
        out["a"] = [await a.reserve("s", n, 5) for n in (1, 2, 3)]
        out["b"] = [await b.reserve("s", n, 5) for n in (1, 2, 3)]
        out["counts"] = await a.viewers("s")
        await a.count("s", 2, node_total=2)
        out["b_again"] = await b.reserve("s", 3, 5)
        out["totals"] = await b.totals(["s", "other"])
        await b.count("s", 3, node_total=7)
        out["loads"] = await a.loads()
        await a.forget("node-b")
        out["after_forget"] = (await a.viewers("s"), await a.loads())
        return out

    out = run(redis_url, work)
    assert out["a"] == [True, True, True]
    assert out["b"] == [True, True, False]
    assert out["counts"] == {"node-a": 3, "node-b": 2}
    assert out["b_again"] is True
    assert out["totals"] == {"s": 5, "other": 0}
    assert out["loads"] == {"node-a": 2, "node-b": 7}
    assert out["after_forget"] == ({"node-a": 2}, {"node-a": 2})


def test_public_state_goes_with_the_origin(redis_url: str) -> None:
    async def work(redis: Redis) -> tuple[object, object]:
        a = Placement(redis, "node-a")
        await a.claim("s")
        await a.publish_state("s", {"publishing": "1", "video_codec": "VP8"})
        before = await a.states(["s"])
        await a.forget("node-a")
        return before, await a.states(["s"])

    before, after = run(redis_url, work)
    assert before == {"s": {"publishing": "1", "video_codec": "VP8"}}
    assert after == {"s": {}}
