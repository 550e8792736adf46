"""Real tus clients against a real server, and restarts in the middle of an upload."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tusclient import client as tus_client

from service.db.models import Clip
from service.locks import BEAT_SECONDS
from service.storage import open_store
from service.storage.keys import clip_source
from tests import media_files
from tests.conftest import ServerProcess, run_db
from tests.remote import member_of_new_community
from tests.uploads.conftest import metadata, tus


def stored_clip(server: ServerProcess) -> Clip:
    async def work(session: AsyncSession) -> Clip:
        clip = await session.scalar(select(Clip))
        assert isinstance(clip, Clip)
        return clip

    return run_db(server.settings, work)


def stored_sha256(server: ServerProcess, clip: Clip) -> str:
    digest = hashlib.sha256()
    for chunk in open_store(server.settings).get(clip_source(clip.id)):
        digest.update(chunk)
    return digest.hexdigest()


def tuspy(server: ServerProcess, headers: dict[str, str]) -> tus_client.TusClient:
    return tus_client.TusClient(f"{server.url}/api/uploads", headers=headers)


def test_tuspy_uploads_a_story(server_process: ServerProcess, tmp_path: Path) -> None:
    """tuspy, unchanged, uploads 20 MiB in 3 MiB chunks (several S3 parts); SHA-256 matches."""
    who = member_of_new_community(server_process)
    video = media_files.big_mp4(tmp_path / "ride.mp4", 20)
    uploader = tuspy(server_process, who.auth).uploader(
        str(video), chunk_size=3 * 1024 * 1024,
        metadata={"community": who.slug, "release": "1", "filename": "ride.mp4",
                  "title": "Ride"})
    uploader.upload()
    clip = stored_clip(server_process)
    assert clip.state == "uploaded" and clip.size == video.stat().st_size
    assert stored_sha256(server_process, clip) == hashlib.sha256(video.read_bytes()).hexdigest()


def test_restart_between_chunks(server_process: ServerProcess, tmp_path: Path) -> None:
    """The app is killed after some chunks; tuspy resumes from the stored offset."""
    who = member_of_new_community(server_process)
    video = media_files.big_mp4(tmp_path / "ride.mp4", 12)
    meta = {"community": who.slug, "release": "1", "filename": "ride.mp4"}
    first = tuspy(server_process, who.auth).uploader(str(video), chunk_size=1024 * 1024,
                                                      metadata=meta)
    for _ in range(5):
        first.upload_chunk()  # type: ignore[no-untyped-call]
    url = first.url
    server_process.kill()
    server_process.start()
    resumed = tuspy(server_process, who.auth).uploader(str(video), chunk_size=1024 * 1024,
                                                        metadata=meta, url=url)
    assert resumed.get_offset() == 5 * 1024 * 1024
    resumed.upload()
    clip = stored_clip(server_process)
    assert clip.state == "uploaded"
    assert stored_sha256(server_process, clip) == hashlib.sha256(video.read_bytes()).hexdigest()


def test_crash_in_the_middle_of_a_patch(server_process: ServerProcess, tmp_path: Path) -> None:
    """SIGKILL while a PATCH is streaming: the offset after restart covers only stored bytes,
    and finishing from there gives an identical file."""
    who = member_of_new_community(server_process)
    video = media_files.big_mp4(tmp_path / "ride.mp4", 20)
    data = video.read_bytes()
    with httpx.Client(base_url=server_process.url, headers=who.auth) as http:
        made = http.post("/api/uploads", headers=tus(**{
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(community=who.slug, release=1, filename="ride.mp4")}))
        location = made.headers["location"]
        sent = threading.Event()

        def slow_body() -> Iterator[bytes]:
            for start in range(0, len(data), 512 * 1024):
                if start >= 11 * 1024 * 1024:
                    sent.set()
                    time.sleep(30)  # the server dies while we wait
                yield data[start:start + 512 * 1024]

        def patch() -> None:
            with contextlib.suppress(httpx.HTTPError):
                http.patch(location, content=slow_body(), timeout=60, headers=tus(**{
                    "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))

        worker = threading.Thread(target=patch, daemon=True)
        worker.start()
        assert sent.wait(30)
        time.sleep(1.0)  # let the server write what it has
        server_process.kill()
    server_process.start()
    restarted = time.monotonic()
    with httpx.Client(base_url=server_process.url, headers=who.auth) as http:
        offset = int(http.head(location, headers=tus()).headers["upload-offset"])
        assert 0 <= offset <= 11 * 1024 * 1024
        while True:  # like tus-js-client: 423 means "retry shortly"
            done = http.patch(location, content=data[offset:], timeout=60, headers=tus(**{
                "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}))
            if done.status_code != 423 or time.monotonic() - restarted > 15:
                break
            time.sleep(0.5)
        assert done.status_code == 204, done.text
    # the dead process's lock is broken once its heartbeat lapses
    assert time.monotonic() - restarted < BEAT_SECONDS + 3
    clip = stored_clip(server_process)
    assert clip.state == "uploaded"
    assert stored_sha256(server_process, clip) == hashlib.sha256(data).hexdigest()
