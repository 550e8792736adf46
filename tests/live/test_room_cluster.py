"""The room channel across two real node processes: people on either node see one room.

Chat arrives everywhere in one order, presence agrees, a mute or a rate limit set through one
node holds on the other at once, a stage invite reaches the member on whichever node, and
when a node is SIGKILLed its people leave the room within the registry's loss time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from service.cluster.nodes import LOST_SECONDS, WATCH_SECONDS
from tests.conftest import ServerProcess
from tests.live import run_async
from tests.live.test_room_channel import Socket, cookie_of, join_member, open_socket
from tests.live.test_signalling import schedule
from tests.remote import member_of_new_community


async def chats(sock: Socket, count: int) -> list[str]:
    """The texts of the next `count` chat messages the socket receives, in order."""
    found: list[str] = []
    while len(found) < count:
        found.append((await sock.expect("chat"))["text"])
    return found


def test_one_room_across_two_nodes(two_nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = two_nodes
    host = member_of_new_community(a, role="host")
    live = schedule(a, host)
    host_cookie = cookie_of(a, "member@example.com")
    ana = join_member(a, host.owner_token, host.slug, "ana@example.com", "Ana")
    budi = join_member(b, host.owner_token, host.slug, "budi@example.com", "Budi")
    citra = join_member(a, host.owner_token, host.slug, "citra@example.com", "Citra")

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        h = await open_socket(a, live["id"], host_cookie)
        an = await open_socket(b, live["id"], ana)       # Ana on the other node
        bu = await open_socket(a, live["id"], budi)
        ana_id = (await an.expect("hello"))["you"]
        budi_id = (await bu.expect("hello"))["you"]
        everyone = (h, an, bu)
        out["presence"] = [(await s.expect("presence", count=3))["people"] for s in everyone]

        # chat from both nodes, interleaved: one order for all
        for n in range(3):
            await an.send(type="chat", text=f"ana {n}")
            await bu.send(type="chat", text=f"budi {n}")
        out["orders"] = [await chats(s, 6) for s in everyone]

        # a mute issued on node A holds for Ana on node B at once
        await h.send(type="mute", user_id=ana_id)
        await an.expect("muted", user_id=ana_id)
        await an.send(type="chat", text="still here?")
        out["muted"] = (await an.expect("error"))["code"]
        await h.send(type="unmute", user_id=ana_id)
        await an.expect("unmuted", user_id=ana_id)

        # one person's rate counts on both nodes together (5 per 10 s)
        c1 = await open_socket(a, live["id"], citra)
        c2 = await open_socket(b, live["id"], citra)
        for sock in (c1, c2):
            await sock.expect("hello")
        for n in range(5):
            await (c1, c2)[n % 2].send(type="chat", text=f"citra {n}")
        await chats(c2, 5)
        await c1.send(type="chat", text="one too many")
        out["rate"] = (await c1.expect("error"))["code"]

        # a hand on node B, an invite from node A: the token reaches Ana's socket only
        await an.send(type="hand", up=True)
        out["hands"] = [x["name"] for x in (await h.expect("hands"))["hands"]]
        await h.send(type="invite", user_id=ana_id)
        out["invite"] = (await an.expect("invite"))["stage_token"].startswith("kstage_")
        out["hands_after"] = (await h.expect("hands"))["hands"]
        await h.send(type="invite", user_id=999_999)
        out["not_here"] = (await h.expect("error"))["code"]
        out["budi_invited"] = any(m["type"] == "invite" for m in bu.seen)
        out["budi"] = budi_id

        # node B is killed: Ana and Citra's socket there leave the room as seen from A
        await c2.ws.close()
        await h.expect("presence", count=4)
        b.kill()
        killed = time.monotonic()

        async def gone() -> dict[str, Any]:
            while True:
                message = await h.expect("presence")
                if message["count"] == 3:
                    return message

        left = await asyncio.wait_for(gone(), LOST_SECONDS + 4)
        out["cleared_s"] = time.monotonic() - killed
        out["left"] = left["people"]
        for sock in (h, bu, c1):
            await sock.ws.close()
        return out

    out = run_async(run())
    assert out["presence"] == [["Ana", "Budi", "Mo"]] * 3
    assert out["orders"][0] == out["orders"][1] == out["orders"][2], out["orders"]
    assert sorted(out["orders"][0]) == sorted([f"ana {n}" for n in range(3)]
                                              + [f"budi {n}" for n in range(3)])
    for who in ("ana", "budi"):  # each sender's own order is kept
        mine = [t for t in out["orders"][0] if t.startswith(who)]
        assert mine == [f"{who} {n}" for n in range(3)]
    assert out["muted"] == "muted" and out["rate"] == "rate_limited"
    assert out["hands"] == ["Ana"] and out["invite"] is True and out["hands_after"] == []
    assert out["not_here"] == "not_here" and out["budi_invited"] is False
    assert out["left"] == ["Budi", "Citra", "Mo"]
    # the last beat may be up to a beat old when the node dies
    assert out["cleared_s"] <= LOST_SECONDS + WATCH_SECONDS + 1.0, out["cleared_s"]
