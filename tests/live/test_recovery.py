"""Signals and recovery over the wire: viewers learn when the publisher stops (room channel
event, RTCP BYE that ends a WHEP player's track), a crashed encoder is released within 5 s,
a new stream key ends the old encoder at once, and ending the session closes every viewer's
connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
from aiortc import RTCPeerConnection

from tests.conftest import ServerProcess
from tests.live import run_async
from tests.live.test_room_channel import cookie_of, live_server, open_socket
from tests.live.test_signalling import publish, schedule, watch
from tests.remote import member_of_new_community

__all__ = ["live_server"]


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Poll `condition` (aiortc states change without an event to wait on)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def crash(pc: RTCPeerConnection) -> None:
    """An encoder that dies: it stops sending, says nothing (no DELETE, no BYE, no DTLS
    close)."""
    for transceiver in pc.getTransceivers():
        await transceiver.sender.stop()


def test_viewers_learn_the_publisher_left_and_stale_publishers_are_released(
        live_server: ServerProcess) -> None:
    host = member_of_new_community(live_server, role="host")
    live = schedule(live_server, host)
    cookie = cookie_of(live_server, "member@example.com")
    whip, key = live["whip_url"], live["publish_token"]

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        sock = await open_socket(live_server, live["id"], cookie)
        async with httpx.AsyncClient(timeout=20) as client:
            first, made = await publish(client, whip, key)
            assert made.status_code == 201, made.text
            await sock.expect("publisher", live=True)
            await asyncio.sleep(1.5)
            viewer, answer = await watch(client, live["whep_url"], host.token)
            assert answer.status_code == 201, answer.text
            await asyncio.sleep(2.0)
            out["frames_before"] = len(viewer.frames)
            video = next(t.receiver.track for t in viewer.pc.getTransceivers()
                         if t.kind == "video")
            deleted = time.monotonic()
            gone = await client.delete(live_server.url + made.headers["location"],
                                       headers={"Authorization": f"Bearer {key}"})
            out["delete"] = gone.status_code
            await sock.expect("publisher", live=False, slot="host")
            out["told_s"] = time.monotonic() - deleted
            await until(lambda: video.readyState == "ended", 5)
            out["track_ended_s"] = time.monotonic() - deleted
            await first.close()

            crashing, made = await publish(client, whip, key)  # the host is back
            assert made.status_code == 201, made.text
            await sock.expect("publisher", live=True)
            await asyncio.sleep(2.0)
            await crash(crashing)
            crashed = time.monotonic()
            await sock.expect("publisher", live=False)
            out["released_s"] = time.monotonic() - crashed
            keyed, again = await publish(client, whip, key)
            out["publish_after_crash"] = again.status_code
            await crashing.close()
            await sock.expect("publisher", live=True)
            await asyncio.sleep(1.0)

            renewed = time.monotonic()
            token = await client.post(
                f"{live_server.url}/api/communities/{host.slug}/live/{live['id']}/token",
                headers=host.auth)
            out["new_key"] = token.status_code
            await sock.expect("publisher", live=False)
            out["old_key_stopped_s"] = time.monotonic() - renewed
            await keyed.close()
            _, old = await publish(client, whip, key)
            out["old_key"] = old.status_code
            last, made = await publish(client, whip, token.json()["publish_token"])
            out["new_key_publish"] = made.status_code
            await sock.expect("publisher", live=True)
            await asyncio.sleep(1.5)

            watching, answer = await watch(client, live["whep_url"], host.token)
            assert answer.status_code == 201, answer.text
            await asyncio.sleep(2.0)
            out["frames_again"] = len(watching.frames)
            ending = time.monotonic()
            await client.post(
                f"{live_server.url}/api/communities/{host.slug}/live/{live['id']}/end",
                headers=host.auth)
            await until(lambda: watching.pc.connectionState == "closed", 10)
            out["closed_s"] = time.monotonic() - ending
            out["closed"] = watching.pc.connectionState
            for pc in (viewer, watching):
                await pc.close()
            await last.close()
        await sock.ws.close()
        return out

    out = run_async(run())
    assert out["frames_before"] > 30, out
    assert out["delete"] == 200 and out["told_s"] < 1.0, out
    assert out["track_ended_s"] < 2.0, out  # the player's track ends (RTCP BYE)
    assert out["released_s"] < 5.0 and out["publish_after_crash"] == 201, out
    assert out["new_key"] == 200 and out["old_key_stopped_s"] < 1.0, out
    assert out["old_key"] == 401 and out["new_key_publish"] == 201, out
    assert out["frames_again"] > 30, out
    assert out["closed"] == "closed" and out["closed_s"] < 3.0, out
