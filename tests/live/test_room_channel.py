"""The room channel over a real WebSocket: presence, chat with its limits, reactions,
moderation, and the stage (hand, invite, the guest publishing through WHIP, removal)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from aiortc import RTCSessionDescription
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from service.db.models import LiveEvent
from service.settings import Settings
from service.storage import open_store
from tests.conftest import PASSWORD, ServerProcess, run_db
from tests.live import run_async
from tests.live.test_forward import Viewer, moving, prefer
from tests.live.test_signalling import SDP, publish, schedule
from tests.remote import member_of_new_community


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    local = settings.replace(ice_host_addresses=("127.0.0.1",))
    server = ServerProcess(local, tmp_path / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def cookie_of(server: ServerProcess, email: str) -> str:
    login = httpx.post(f"{server.url}/api/auth/login", json={"email": email,
                                                             "password": PASSWORD})
    assert login.status_code == 200, login.text
    return str(login.cookies["kumpul_session"])


def join_member(server: ServerProcess, owner_token: str, slug: str, email: str,
                name: str) -> str:
    link = httpx.post(f"{server.url}/api/communities/{slug}/invites", json={"role": "member"},
                      headers={"Authorization": f"Bearer {owner_token}"}).json()["url"]
    accepted = httpx.post(f"{server.url}/api/invites/{link.rsplit('/', 1)[1]}/accept",
                          json={"email": email, "display_name": name, "password": PASSWORD})
    assert accepted.status_code == 201, accepted.text
    return cookie_of(server, email)


class Socket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def expect(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The next message of `kind` (with these fields), skipping others."""
        async def find() -> dict[str, Any]:
            while True:
                message: dict[str, Any] = json.loads(await self.ws.recv())
                self.seen.append(message)
                if message["type"] == kind and all(message.get(k) == v
                                                   for k, v in fields.items()):
                    return message

        return await asyncio.wait_for(find(), 5.0)


async def open_socket(server: ServerProcess, session_id: str, cookie: str | None,
                      origin: str | None = None) -> Socket:
    url = server.url.replace("http://", "ws://") + f"/api/live/{session_id}/room"
    headers = {"Origin": origin or server.url}
    if cookie:
        headers["Cookie"] = f"kumpul_session={cookie}"
    return Socket(await connect(url, additional_headers=headers))


def test_chat_reactions_moderation_and_stage(live_server: ServerProcess,
                                              settings: Settings) -> None:
    host = member_of_new_community(live_server, role="host")
    live = schedule(live_server, host)
    host_cookie = cookie_of(live_server, "member@example.com")
    ana = join_member(live_server, host.owner_token, host.slug, "ana@example.com", "Ana")
    budi = join_member(live_server, host.owner_token, host.slug, "budi@example.com", "Budi")

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for label, cookie, origin in (("anonymous", None, None),
                                      ("cross_site", ana, "https://evil.example")):
            try:
                sock = await open_socket(live_server, live["id"], cookie, origin)
                await sock.ws.recv()
            except ConnectionClosed as closed:
                out[label] = closed.rcvd.code if closed.rcvd else None
        h = await open_socket(live_server, live["id"], host_cookie)
        a = await open_socket(live_server, live["id"], ana)
        b = await open_socket(live_server, live["id"], budi)
        out["hello"] = (await h.expect("hello"))["host"]
        budi_id = (await b.expect("hello"))["you"]
        out["presence"] = (await b.expect("presence", count=3))["people"]

        await a.send(type="chat", text="  hello   room  ")
        chat = await b.expect("chat")
        out["chat"] = (chat["name"], chat["text"], chat["at_ms"] >= 0)
        await b.send(type="reaction", emoji="🔥")
        out["reaction"] = (await h.expect("reaction"))["emoji"]
        await b.send(type="reaction", emoji="💩")
        out["bad_reaction"] = (await b.expect("error"))["code"]
        await a.send(type="chat", text="x" * 501)
        out["too_long"] = (await a.expect("error"))["code"]
        await a.ws.send("not json")
        out["not_json"] = (await a.expect("error"))["code"]
        for n in range(5):
            await a.send(type="chat", text=f"spam {n}")
        out["rate"] = (await a.expect("error"))["code"]

        await b.send(type="mute", user_id=1)
        out["member_mutes"] = (await b.expect("error"))["code"]
        await h.send(type="mute", user_id=budi_id)
        await b.expect("muted", user_id=budi_id)
        await b.send(type="chat", text="can I?")
        out["muted"] = (await b.expect("error"))["code"]
        await h.send(type="delete", id=chat["id"])
        out["deleted"] = (await a.expect("deleted"))["id"] == chat["id"]

        # the stage: the host publishes, Ana raises a hand, is invited and goes on stage
        async with httpx.AsyncClient(timeout=20) as client:
            hostpc, made = await publish(client, live["whip_url"], live["publish_token"])
            assert made.status_code == 201, made.text
            await a.send(type="hand", up=True)
            hands = await h.expect("hands")
            out["hands"] = [x["name"] for x in hands["hands"]]
            ana_id = hands["hands"][0]["user_id"]
            await h.send(type="invite", user_id=ana_id)
            invite = await a.expect("invite")
            out["budi_invited"] = any(m["type"] == "invite" for m in b.seen)
            await asyncio.sleep(1.0)
            viewer = Viewer()
            viewer.pc.addTransceiver("video", direction="recvonly")  # a second pair: the stage
            viewer.pc.addTransceiver("audio", direction="recvonly")
            prefer(viewer.pc, "video", "VP8")
            await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
            answer = await client.post(live["whep_url"], content=viewer.pc.localDescription.sdp,
                                       headers={**SDP, **host.auth})
            assert answer.status_code == 201, answer.text
            await viewer.pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
            guestpc, onstage = await publish(client, live["whip_url"], invite["stage_token"])
            assert onstage.status_code == 201, onstage.text
            out["stage"] = (await b.expect("stage", guest=ana_id))["guest"]
            await asyncio.sleep(3)
            # two pictures: the host's and the guest's, each moving
            out["frames"] = sorted(len(f) for f in viewer.per_track.values())
            out["moving"] = all(moving(f) for f in viewer.per_track.values())
            await h.send(type="remove_guest")
            out["removed"] = (await b.expect("stage", guest=None))["guest"]
            _, again = await publish(client, live["whip_url"], invite["stage_token"])
            out["token_after_removal"] = again.status_code
            ended = await client.post(
                f"{live_server.url}/api/communities/{host.slug}/live/{live['id']}/end",
                headers=host.auth)
            out["ended"] = ended.json()["recording"]
            await viewer.close()
            await guestpc.close()
            await hostpc.close()
        for sock in (h, a, b):
            await sock.ws.close()
        return out

    out = run_async(run())
    assert out["anonymous"] == 4401 and out["cross_site"] == 4403
    assert out["hello"] is True and out["presence"] == ["Ana", "Budi", "Mo"]
    assert out["chat"] == ("Ana", "hello   room", True)
    assert out["reaction"] == "🔥" and out["bad_reaction"] == "invalid_reaction"
    assert out["too_long"] == "message_too_long" and out["not_json"] == "invalid_json"
    assert out["rate"] == "rate_limited"
    assert out["member_mutes"] == "not_allowed" and out["muted"] == "muted"
    assert out["deleted"] is True
    assert out["hands"] == ["Ana"] and out["budi_invited"] is False
    assert out["stage"] is not None and out["moving"], out
    assert len(out["frames"]) == 2 and out["frames"][0] > 40, out
    assert out["removed"] is None and out["token_after_removal"] == 401

    async def events(session: AsyncSession) -> list[tuple[str, str, bool]]:
        rows = await session.scalars(select(LiveEvent).order_by(LiveEvent.id))
        return [(e.kind, e.body, e.deleted_at is not None) for e in rows]

    assert out["ended"] == "processing"
    keys = {o.key.rsplit("/", 1)[1] for o in open_store(live_server.settings).list("live/")}
    assert keys == {"recording.webm", "guest-1.webm"}  # the host's, and the guest's turn
    found = run_db(live_server.settings, events)
    assert found[0] == ("chat", "hello   room", True)  # deleted by the host
    assert ("reaction", "🔥", False) in found

