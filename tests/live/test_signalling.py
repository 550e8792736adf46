"""WHIP and WHEP against a real server process, with aiortc clients: a host publishes,
members watch moving video, and every protocol error gets its status and a clear code."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from media.probe import probe
from service.settings import Settings
from service.storage import open_store
from tests.conftest import ServerProcess, jobs_using
from tests.live import run_async
from tests.live.test_forward import MovingPicture, Viewer, moving, prefer
from tests.remote import RemoteMember, member_of_new_community
from workers.live import render_recording

SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    local = settings.replace(ice_host_addresses=("127.0.0.1",), live_max_viewers=2)
    server = ServerProcess(local, tmp_path / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def schedule(server: ServerProcess, host: RemoteMember) -> dict[str, Any]:
    made = httpx.post(f"{server.url}/api/communities/{host.slug}/live", headers=host.auth,
                      json={"title": "Trail talk", "description": "Ask me anything"})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    assert body["state"] == "scheduled" and body["publish_token"].startswith("kpub_")
    return body


async def publish(client: httpx.AsyncClient, url: str, token: str, codec: str = "VP8") -> tuple[
        RTCPeerConnection, httpx.Response]:
    pc = RTCPeerConnection()
    pc.addTrack(MovingPicture())
    pc.addTrack(AudioStreamTrack())
    prefer(pc, "video", codec)
    await pc.setLocalDescription(await pc.createOffer())
    answer = await client.post(url, content=pc.localDescription.sdp,
                               headers={**SDP, "Authorization": f"Bearer {token}"})
    if answer.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    return pc, answer


async def watch(client: httpx.AsyncClient, url: str, token: str) -> tuple[Viewer, httpx.Response]:
    viewer = Viewer()
    prefer(viewer.pc, "video", "VP8")
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
    answer = await client.post(url, content=viewer.pc.localDescription.sdp,
                               headers={**SDP, "Authorization": f"Bearer {token}"})
    if answer.status_code == 201:
        await viewer.pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    return viewer, answer


def code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_publish_and_watch_over_whip_and_whep(live_server: ServerProcess) -> None:
    host = member_of_new_community(live_server, role="host")
    live = schedule(live_server, host)

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=20) as client:
            viewer, early = await watch(client, live["whep_url"], host.token)
            out["early"] = code(early)
            await viewer.close()
            _, wrong = await publish(client, live["whip_url"], "kpub_nope")
            out["wrong_token"] = code(wrong)
            bad = await client.post(live["whip_url"], content="hello",
                                    headers={**SDP, "Authorization":
                                             f"Bearer {live['publish_token']}"})
            out["malformed"] = code(bad)
            typed = await client.post(live["whip_url"], content="v=0",
                                      headers={"Content-Type": "text/plain", "Authorization":
                                               f"Bearer {live['publish_token']}"})
            out["content_type"] = code(typed)
            publisher, made = await publish(client, live["whip_url"], live["publish_token"])
            assert made.status_code == 201, made.text
            out["location"] = made.headers["location"]
            out["answer_type"] = made.headers["content-type"]
            second, again = await publish(client, live["whip_url"], live["publish_token"])
            out["second"] = code(again)
            await second.close()
            await asyncio.sleep(1.0)
            crowd = []
            for _ in range(2):
                viewer, answer = await watch(client, live["whep_url"], host.token)
                assert answer.status_code == 201, answer.text
                crowd.append((viewer, answer.headers["location"]))
            extra, full = await watch(client, live["whep_url"], host.token)
            out["full"] = (full.status_code, full.json()["error"]["code"],
                           full.headers.get("retry-after"))
            await extra.close()
            await asyncio.sleep(3)
            out["frames"] = [len(v.frames) for v, _ in crowd]
            out["moving"] = [moving(v.frames) for v, _ in crowd]
            listed = (await client.get(f"{live_server.url}/api/communities/{host.slug}/live",
                                       headers=host.auth)).json()["sessions"][0]
            out["listed"] = (listed["state"], listed["viewers"], listed["publishing"])
            gone = await client.delete(live_server.url + crowd[0][1], headers=host.auth)
            out["left"] = gone.status_code
            await crowd[0][0].close()
            ended = await client.post(
                f"{live_server.url}/api/communities/{host.slug}/live/{live['id']}/end",
                headers=host.auth)
            out["ended"] = ended.json()["state"]
            _, after = await publish(client, live["whip_url"], live["publish_token"])
            out["after_end"] = code(after)
            late, refused = await watch(client, live["whep_url"], host.token)
            out["late"] = code(refused)
            await late.close()
            await crowd[1][0].close()
            await publisher.close()
        return out

    out = run_async(run())
    assert out["early"] == (409, "session_not_live")
    assert out["wrong_token"] == (401, "invalid_token")
    assert out["malformed"] == (400, "malformed_sdp")
    assert out["content_type"] == (415, "sdp_required")
    assert out["location"].startswith(f"/api/live/{live['id']}/whip/")
    assert out["answer_type"].startswith("application/sdp")
    assert out["second"] == (409, "already_publishing")
    assert out["full"] == (503, "room_full", "30")
    assert all(n > 40 for n in out["frames"]), out
    assert all(out["moving"]), out
    assert out["listed"] == ("live", 2, True)
    assert out["left"] == 200
    assert out["ended"] == "ended"
    assert out["after_end"] == (410, "session_ended")
    assert out["late"] == (410, "session_ended")


def test_only_members_watch_and_only_hosts_schedule(live_server: ServerProcess) -> None:
    host = member_of_new_community(live_server, role="member")
    refused = httpx.post(f"{live_server.url}/api/communities/{host.slug}/live",
                         headers=host.auth, json={"title": "Mine"})
    assert code(refused) == (403, "role_forbidden")
    anonymous = httpx.post(f"{live_server.url}/api/live/nope/whep", content="v=0",
                           headers=SDP)
    assert code(anonymous) == (401, "not_authenticated")
    unknown = httpx.post(f"{live_server.url}/api/live/nope/whep", content="v=0",
                         headers={**SDP, **host.auth})
    assert code(unknown) == (404, "session_not_found")


@pytest.mark.parametrize(("codec", "name", "suffix"), [("VP8", "vp8", ".webm"),
                                                       ("H264", "h264", ".mkv")])
def test_the_recording_lands_in_storage_and_gets_a_rendition(
        live_server: ServerProcess, tmp_path: Path, codec: str, name: str,
        suffix: str) -> None:
    """The host's stream is remuxed (not re-encoded) while live: VP8 to WebM, H.264 (what
    OBS sends) to Matroska; when the session ends it goes to storage and the worker makes
    its web rendition."""
    host = member_of_new_community(live_server, role="host")
    live = schedule(live_server, host)

    async def run() -> None:
        async with httpx.AsyncClient(timeout=20) as client:
            publisher, made = await publish(client, live["whip_url"], live["publish_token"],
                                            codec)
            assert made.status_code == 201, made.text
            await asyncio.sleep(4)
            ended = await client.post(
                f"{live_server.url}/api/communities/{host.slug}/live/{live['id']}/end",
                headers=host.auth)
            assert ended.json()["recording"] == "processing", ended.text
            await publisher.close()

    run_async(run())
    store = open_store(live_server.settings)
    recording = tmp_path / f"recording{suffix}"
    recording.write_bytes(b"".join(store.get(f"live/{live['id']}/recording{suffix}")))
    streams = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(recording)],
        capture_output=True, text=True, check=True).stdout.split()
    codecs = dict(line.split(",") for line in streams)
    assert set(codecs) == {name, "opus"}
    assert 60 <= int(codecs[name]) <= 130  # about 4 s at 30 fps, from the first keyframe
    with jobs_using(live_server.settings):
        assert render_recording(live["id"]) == "ready"
    made = probe(_fetch(store, live["id"], tmp_path), timeout=60)
    assert made.video is not None and made.video.codec == "h264"
    assert 2.0 < made.duration < 5.0
    listed = httpx.get(f"{live_server.url}/api/communities/{host.slug}/live",
                       headers=host.auth).json()["sessions"]
    assert listed == []  # ended sessions leave the upcoming list


def _fetch(store: Any, session_id: str, folder: Path) -> Path:
    path = folder / "web.mp4"
    path.write_bytes(b"".join(store.get(f"live/{session_id}/rendition/web.mp4")))
    return path


def test_ice_servers_are_advertised_as_link_headers(settings: Settings) -> None:
    from service.routes.api_live import ice_links

    assert ice_links(settings, "user-1") == {}
    configured = settings.replace(
        ice_servers=("stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp"),
        turn_username="kumpul", turn_credential="s3cret")
    link = ice_links(configured, "user-1")["Link"]
    assert link.startswith('<stun:stun.example.org:3478>; rel="ice-server", ')
    assert ('<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="kumpul"; '
            'credential="s3cret"; credential-type="password"') in link


def test_a_viewer_without_the_sessions_codec_is_told_which_it_needs(
        live_server: ServerProcess) -> None:
    """An H.264 publisher and a player offering only VP8: 406, and the message names H.264
    (never a silent answer in a codec the player can't decode)."""
    host = member_of_new_community(live_server, role="host")
    live = schedule(live_server, host)

    async def run() -> tuple[httpx.Response, dict[str, Any]]:
        async with httpx.AsyncClient(timeout=20) as client:
            publisher, made = await publish(client, live["whip_url"], live["publish_token"],
                                            "H264")
            assert made.status_code == 201, made.text
            await asyncio.sleep(1.0)
            viewer, refused = await watch(client, live["whep_url"], host.token)
            listed = (await client.get(f"{live_server.url}/api/communities/{host.slug}/live",
                                       headers=host.auth)).json()["sessions"][0]
            await viewer.close()
            await publisher.close()
        return refused, listed

    refused, listed = run_async(run())
    assert code(refused) == (406, "codec_not_offered")
    assert "H264" in refused.json()["error"]["message"]
    assert listed["video_codec"] == "H264" and listed["audio_codec"] == "opus"
