"""Live rooms across two real node processes (`kumpul web` twice: one database, one Redis,
one store): WHIP and WHEP through either node, an edge node's viewers fed from the origin
over the relay, counts in Redis equal to the nodes' own, and the node-kill cases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from redis import Redis

from service.settings import Settings
from tests.conftest import ServerProcess
from tests.live import run_async
from tests.live.test_forward import MovingPicture, Viewer, moving, prefer
from tests.live.test_room_channel import join_member, open_socket
from tests.live.test_signalling import SDP, code, schedule
from tests.remote import member_of_new_community

NodePair = tuple[ServerProcess, ServerProcess]


@pytest.fixture
def nodes(settings: Settings, tmp_path: Path) -> Iterator[NodePair]:
    local = settings.replace(ice_host_addresses=("127.0.0.1",), live_max_viewers=10)
    first = ServerProcess(local, tmp_path / "node-a.log").start()
    second = ServerProcess(local, tmp_path / "node-b.log").start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def node_of(location: str) -> str:
    return location.rsplit("/", 1)[1].split(".", 1)[0]


def redis_of(server: ServerProcess) -> Redis:
    return Redis.from_url(server.settings.redis_url)


def room_counts(server: ServerProcess, session_id: str) -> dict[str, int]:
    found = redis_of(server).hgetall(f"kumpul:live:{session_id}:viewers")
    return {text(k): int(v) for k, v in found.items()}


def node_viewers(server: ServerProcess, node_id: str) -> int:
    """What the node itself says it serves (carried by its beat)."""
    return int(redis_of(server).hget(f"kumpul:node:{node_id}", "viewers") or 0)


async def publish(client: httpx.AsyncClient, url: str, token: str) -> tuple[
        RTCPeerConnection, httpx.Response]:
    pc = RTCPeerConnection()
    pc.addTrack(MovingPicture())
    pc.addTrack(AudioStreamTrack())
    prefer(pc, "video", "VP8")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await client.post(url, content=pc.localDescription.sdp,
                               headers={**SDP, "Authorization": f"Bearer {token}"})
    if answer.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    return pc, answer


async def watch(client: httpx.AsyncClient, url: str, token: str) -> tuple[
        Viewer, httpx.Response]:
    viewer = Viewer()
    prefer(viewer.pc, "video", "VP8")
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
    answer = await client.post(url, content=viewer.pc.localDescription.sdp,
                               headers={**SDP, "Authorization": f"Bearer {token}"})
    if answer.status_code == 201:
        await viewer.pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    return viewer, answer


def urls(server: ServerProcess, session_id: str) -> tuple[str, str]:
    base = f"{server.url}/api/live/{session_id}"
    return base + "/whip", base + "/whep"


async def until(check: Any, seconds: float) -> float:
    """Poll `check()` until it is true; the seconds it took (inf: never)."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if check():
            return time.monotonic() - began
        await asyncio.sleep(0.05)
    return float("inf")


async def crowd(client: httpx.AsyncClient, pair: NodePair, session_id: str, token: str,
                count: int) -> list[tuple[Viewer, str]]:
    """`count` viewers, their WHEP POSTs alternating between the nodes."""
    out = []
    for i in range(count):
        viewer, made = await watch(client, urls(pair[i % 2], session_id)[1], token)
        assert made.status_code == 201, made.text
        out.append((viewer, made.headers["location"]))
        await asyncio.sleep(0.3)  # the node's count reaches Redis before the next choice
    return out


def test_whip_and_whep_through_either_node(nodes: NodePair) -> None:
    """The host publishes through A (A is the origin); a second WHIP through B is 409; B
    forwards DELETE and a new WHIP to A. Viewers POST to either node and are spread over
    both: the edge's viewers decode the origin's moving picture through the relay; counts
    in Redis equal each node's own; a DELETE through the other node releases within 2 s;
    the session ends through B and every viewer's track ends."""
    a, b = nodes
    host = member_of_new_community(a, role="host")
    live = schedule(a, host)
    sid = live["id"]

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=30) as client:
            first, made = await publish(client, urls(a, sid)[0], live["publish_token"])
            assert made.status_code == 201, made.text
            origin = out["origin"] = node_of(made.headers["location"])
            second, again = await publish(client, urls(b, sid)[0], live["publish_token"])
            out["second"] = code(again)
            await second.close()
            stopped = await client.delete(b.url + made.headers["location"],
                                          headers={"Authorization":
                                                   f"Bearer {live['publish_token']}"})
            out["stopped"] = stopped.status_code
            await first.close()
            publisher, made = await publish(client, urls(b, sid)[0], live["publish_token"])
            assert made.status_code == 201, made.text
            out["republished_at"] = node_of(made.headers["location"])
            await asyncio.sleep(1.0)
            people = await crowd(client, nodes, sid, host.token, 4)
            out["served_by"] = [node_of(location) for _, location in people]
            await asyncio.sleep(4)
            out["frames"] = [len(v.frames) for v, _ in people]
            out["moving"] = [moving(v.frames) for v, _ in people]
            out["audio"] = [v.audio for v, _ in people]
            out["first_frame"] = [(v.first_frame_at or 1e9) - v.started for v, _ in people]
            out["counts"] = room_counts(a, sid)
            await asyncio.sleep(2.5)  # a beat carries each node's own count
            out["own"] = {n: node_viewers(a, n) for n in set(out["served_by"])}
            listed = [(await client.get(f"{n.url}/api/communities/{host.slug}/live",
                                        headers=host.auth)).json()["sessions"][0]
                      for n in nodes]
            out["listed"] = [(s["viewers"], s["publishing"], s["video_codec"])
                             for s in listed]
            # a viewer the edge serves leaves through the origin, one of the origin's
            # through the edge: each is released within 2 s
            for viewer, location in people[:2]:
                other = b if node_of(location) == origin else a
                gone = await client.delete(other.url + location, headers=host.auth)
                assert gone.status_code == 200, gone.text
                await viewer.close()
            out["released_s"] = await until(lambda: sum(room_counts(a, sid).values()) == 2, 2)
            ended = await client.post(
                f"{b.url}/api/communities/{host.slug}/live/{sid}/end", headers=host.auth)
            out["ended"] = ended.json()["state"]
            out["cleared_s"] = await until(lambda: not room_counts(a, sid), 3)
            for viewer, _ in people[2:]:
                await viewer.close()
            await publisher.close()
        return out

    out = run_async(run())
    assert out["second"] == (409, "already_publishing"), out
    assert out["stopped"] == 200, out
    assert out["republished_at"] == out["origin"], out
    served = out["served_by"]
    assert len(set(served)) == 2 and served.count(out["origin"]) == 2, out
    assert all(n > 40 for n in out["frames"]), out
    assert all(out["moving"]), out
    assert all(n > 50 for n in out["audio"]), out
    assert all(s < 2.0 for s in out["first_frame"]), out
    assert out["counts"] == {n: served.count(n) for n in set(served)}, out
    assert out["own"] == out["counts"], out
    assert out["listed"] == [(4, True, "VP8")] * 2, out
    assert out["released_s"] < 2, out
    assert out["ended"] == "ended"
    assert out["cleared_s"] < 3, out


def test_losing_the_edge_drops_only_its_viewers(nodes: NodePair) -> None:
    """SIGKILL of the edge: the origin's viewers keep playing, the edge's stop; the edge's
    count leaves Redis within a few seconds and its viewers play again through the other
    node."""
    a, b = nodes
    host = member_of_new_community(a, role="host")
    live = schedule(a, host)
    sid = live["id"]

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=30) as client:
            publisher, made = await publish(client, urls(a, sid)[0], live["publish_token"])
            assert made.status_code == 201, made.text
            origin = node_of(made.headers["location"])
            await asyncio.sleep(1.0)
            people = await crowd(client, nodes, sid, host.token, 2)
            edge = next(node_of(loc) for _, loc in people if node_of(loc) != origin)
            await asyncio.sleep(3)
            out["before"] = [len(v.frames) for v, _ in people]
            b.kill()
            killed = {v: len(v.frames) for v, _ in people}
            await asyncio.sleep(3)
            out["after"] = {node_of(loc): len(v.frames) - killed[v] for v, loc in people}
            out["origin_moving"] = moving(people[0][0].frames[-60:])
            out["forgotten_s"] = await until(lambda: edge not in room_counts(a, sid), 8)
            again, made = await watch(client, urls(a, sid)[1], host.token)
            out["again"] = made.status_code, node_of(made.headers.get("location", "/x.y"))
            await asyncio.sleep(3)
            out["again_frames"] = len(again.frames)
            out["counts"] = room_counts(a, sid)
            out["origin"], out["edge"] = origin, edge
            for viewer, _ in people:
                await viewer.close()
            await again.close()
            await publisher.close()
        return out

    out = run_async(run())
    assert all(n > 40 for n in out["before"]), out
    assert out["after"][out["origin"]] > 40, out
    assert out["after"][out["edge"]] < 5, out
    assert out["origin_moving"], out
    assert out["forgotten_s"] < 8, out
    assert out["again"] == (201, out["origin"]), out
    assert out["again_frames"] > 40, out
    assert out["counts"] == {out["origin"]: 2}, out


def test_losing_the_origin_ends_publishing(nodes: NodePair) -> None:
    """SIGKILL of the origin: the edge's viewers stop; the session stays live with nobody
    publishing and no viewer counted on the dead node; the host publishes again through the
    other node (now the origin), viewers watch there, and the session ends correctly."""
    a, b = nodes
    host = member_of_new_community(a, role="host")
    live = schedule(a, host)
    sid = live["id"]

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=30) as client:
            publisher, made = await publish(client, urls(a, sid)[0], live["publish_token"])
            assert made.status_code == 201, made.text
            origin = node_of(made.headers["location"])
            await asyncio.sleep(1.0)
            people = await crowd(client, nodes, sid, host.token, 2)
            await asyncio.sleep(2)
            a.kill()
            await publisher.close()
            out["forgotten_s"] = await until(lambda: origin not in room_counts(b, sid)
                                             and not redis_of(b).exists(
                                                 f"kumpul:live:{sid}:origin"), 8)
            listed = (await client.get(f"{b.url}/api/communities/{host.slug}/live",
                                       headers=host.auth)).json()["sessions"][0]
            out["listed"] = (listed["state"], listed["publishing"])
            _, refused = await watch(client, urls(b, sid)[1], host.token)
            out["refused"] = code(refused)
            publisher, made = await publish(client, urls(b, sid)[0], live["publish_token"])
            out["republished"] = made.status_code
            out["new_origin"] = node_of(made.headers.get("location", "/x.y"))
            await asyncio.sleep(1.0)
            viewer, seen = await watch(client, urls(b, sid)[1], host.token)
            assert seen.status_code == 201, seen.text
            await asyncio.sleep(3)
            out["frames"] = len(viewer.frames)
            ended = await client.post(
                f"{b.url}/api/communities/{host.slug}/live/{sid}/end", headers=host.auth)
            out["ended"] = ended.status_code, ended.json()["state"]
            await viewer.close()
            for person, _ in people:
                await person.close()
            await publisher.close()
            out["origin"] = origin
        return out

    out = run_async(run())
    assert out["forgotten_s"] < 8, out
    assert out["listed"] == ("live", False), out
    assert out["refused"] == (409, "session_not_live"), out
    assert out["republished"] == 201 and out["new_origin"] != out["origin"], out
    assert out["frames"] > 40, out
    assert out["ended"] == (200, "ended"), out


def test_chat_through_either_node_is_kept_on_the_recordings_timeline(nodes: NodePair) -> None:
    """The host publishes through A (A records); a member chatting through B and one
    through A, both a few seconds in, are kept at the same place on A's recording."""
    a, b = nodes
    host = member_of_new_community(a, role="host")
    live = schedule(a, host)
    sid = live["id"]
    ana = join_member(a, host.owner_token, host.slug, "ana@example.com", "Ana")
    budi = join_member(a, host.owner_token, host.slug, "budi@example.com", "Budi")

    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            publisher, made = await publish(client, urls(a, sid)[0], live["publish_token"])
            assert made.status_code == 201, made.text
            on_b = await open_socket(b, sid, ana)
            on_a = await open_socket(a, sid, budi)
            for sock in (on_b, on_a):
                await sock.expect("hello")
            await asyncio.sleep(3.0)
            await on_b.send(type="chat", text="from b")
            first = (await on_a.expect("chat"))["at_ms"]
            await on_a.send(type="chat", text="from a")
            second = (await on_b.expect("chat"))["at_ms"]
            for sock in (on_b, on_a):
                await sock.ws.close()
            await publisher.close()
            return [first, second]

    through_b, through_a = run_async(run())
    assert 2000 <= through_b <= through_a, (through_b, through_a)
    assert through_a - through_b < 1000, (through_b, through_a)
