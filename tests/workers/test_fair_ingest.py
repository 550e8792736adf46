"""Fair processing, over the wire: stories go up to a real server; `kumpul worker` processes
on their lanes prepare them. Heavy clips go to their own lane and never hold up short ones,
a clip beyond the ceiling is refused with a plain reason, a member or a community cannot
fill the queue, and a timeout is never retried blindly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from redis import Redis

from media import budget
from service.settings import Settings
from tests import media_files
from tests.conftest import ServerProcess, World, make_settings, settings_env
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus
from workers.context import JobContext
from workers.ingest import ingest_clip, ingest_heavy


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    """A budget a 720p 60 fps clip of 2 s exceeds (110 megapixel-frames), a ceiling that a
    1080p one does, and room for two clips per member, three per community."""
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
                         KUMPUL_PROCESSING_BUDGET="100", KUMPUL_PROCESSING_CEILING="200",
                         KUMPUL_MEMBER_PROCESSING_LIMIT="2",
                         KUMPUL_COMMUNITY_PROCESSING_LIMIT="3")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fair-media")
    return {"short": media_files.story_mp4(folder / "short.mp4"),
            "heavy": media_files.phone_60fps_mp4(folder / "heavy.mp4"),
            "huge": media_files.phone_60fps_mp4(folder / "huge.mp4", size="1920x1080")}


def send(server: ServerProcess, token: str, slug: str, data: bytes) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        made = client.post("/api/uploads", headers={**auth, **tus(**{
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(community=slug, release=1, filename="s.mp4")})})
        assert made.status_code == 201, made.text
        sent = client.patch(made.headers["location"], content=data, headers={
            **auth, **tus(**{"Upload-Offset": "0",
                             "Content-Type": "application/offset+octet-stream"})})
        assert sent.status_code == 204, sent.text


def mine(server: ServerProcess, token: str, slug: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/api/communities/{slug}/clips/mine",
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(reversed(answer.json()["clips"]))  # oldest first


def worker(settings: Settings, *queues: str) -> None:
    done = subprocess.run([sys.executable, "-m", "service.cli", "worker", *queues, "--burst"],
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def depth(settings: Settings, queue: str) -> int:
    with Redis.from_url(settings.redis_url) as redis:
        return int(redis.llen(f"rq:queue:{queue}"))


def test_a_heavy_clip_goes_to_its_own_lane(server_process: ServerProcess,
                                            files: dict[str, Path], settings: Settings) -> None:
    """The ingest lane probes the heavy clip and hands it on; the short clip sent after it
    is ready without waiting for it; the heavy lane then makes a normal 30 fps rendition."""
    who = member_of_new_community(server_process)
    send(server_process, who.token, who.slug, files["heavy"].read_bytes())
    send(server_process, who.token, who.slug, files["short"].read_bytes())
    worker(settings, "ingest")
    heavy, short = mine(server_process, who.token, who.slug)
    assert short["state"] == "ready_for_review"
    assert heavy["state"] == "processing" and depth(settings, "heavy") == 1
    worker(settings, "heavy")
    heavy = mine(server_process, who.token, who.slug)[0]
    assert heavy["state"] == "ready_for_review", heavy
    assert depth(settings, "heavy") == 0


def test_beyond_the_ceiling_is_refused_plainly(server_process: ServerProcess,
                                               files: dict[str, Path],
                                               settings: Settings) -> None:
    who = member_of_new_community(server_process)
    send(server_process, who.token, who.slug, files["huge"].read_bytes())
    worker(settings, "ingest")
    (clip,) = mine(server_process, who.token, who.slug)
    assert clip["state"] == "invalid"
    assert clip["reason"] == ("This video (1920x1080 at 60 fps, 2 seconds) is more than we "
                              "can prepare.")
    assert "4K 30 fps" in clip["hint"]


def test_one_member_cannot_fill_the_queue(server_process: ServerProcess,
                                          files: dict[str, Path], settings: Settings) -> None:
    """Four stories at once: two go to the queue, two wait and say so; as each finishes the
    next one goes; all four end ready."""
    who = member_of_new_community(server_process)
    for _ in range(4):
        send(server_process, who.token, who.slug, files["short"].read_bytes())
    clips = mine(server_process, who.token, who.slug)
    assert [c["state"] for c in clips] == ["uploaded"] * 4
    assert depth(settings, "ingest") == 2
    waiting = [c for c in clips if c["reason"]]
    assert len(waiting) == 2
    assert waiting[0]["reason"] == "Waiting for your other stories to finish preparing."
    assert waiting[0]["hint"] == "It starts by itself; you don't need to do anything."
    worker(settings, "ingest")
    assert [c["state"] for c in mine(server_process, who.token, who.slug)] == \
        ["ready_for_review"] * 4


def test_one_community_cannot_fill_the_queue(server_process: ServerProcess, world: World,
                                             files: dict[str, Path],
                                             settings: Settings) -> None:
    """Two members of one community with two stories each: the community's limit (3) holds
    the fourth back, with its own note."""
    first = member_of_new_community(server_process)
    owner = httpx.Client(base_url=server_process.url, timeout=30,
                         headers={"Authorization": f"Bearer {first.owner_token}"})
    link = owner.post(f"/api/communities/{first.slug}/invites", json={"role": "member"})
    joined = httpx.post(f"{server_process.url}/api/invites/{link.json()['url'].rsplit('/', 1)[1]}"
                        "/accept", json={"email": "second@example.com", "display_name": "Sec",
                                         "password": "a long enough password"})
    assert joined.status_code == 201, joined.text
    second_token = httpx.post(
        f"{server_process.url}/api/tokens", json={"name": "t"}, cookies=joined.cookies,
        headers={"X-CSRF-Token": joined.json()["csrf_token"]}).json()["token"]
    for token in (first.token, first.token, second_token, second_token):
        send(server_process, token, first.slug, files["short"].read_bytes())
    assert depth(settings, "ingest") == 3
    last = mine(server_process, second_token, first.slug)[-1]
    assert last["reason"] == ("Waiting its turn: other stories of this community are being "
                              "prepared.")
    worker(settings, "ingest")
    assert {c["state"] for c in mine(server_process, second_token, first.slug)} == \
        {"ready_for_review"}


def test_a_timeout_is_never_retried_blindly(server_process: ServerProcess,
                                            files: dict[str, Path], settings: Settings,
                                            jobs_here: JobContext,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With encodes given too little time, ffmpeg is really killed: the normal lane hands the
    clip on with the fastest plan (its one retry), and when that times out too the clip is
    invalid with a reason that says what to do; the jobs, run again, find nothing to do."""
    monkeypatch.setattr(budget.Plan, "timeout", lambda self, base, seconds: 0.05)
    who = member_of_new_community(server_process)
    send(server_process, who.token, who.slug, files["short"].read_bytes())
    (clip,) = mine(server_process, who.token, who.slug)
    assert ingest_clip(clip["id"]) == "heavy:fastest"
    assert ingest_heavy(clip["id"], "fastest") == "invalid"
    (clip,) = mine(server_process, who.token, who.slug)
    assert clip["state"] == "invalid"
    assert clip["reason"] == ("This video took too long to prepare, even on our fastest "
                              "settings.")
    assert "1080p 30 fps" in clip["hint"]
    assert ingest_clip(clip["id"]) == "skipped" and ingest_heavy(clip["id"], "fast") == "skipped"
