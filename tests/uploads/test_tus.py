"""The tus 1.0 endpoint, request by request: happy path and every kind of bad input."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import AuditEvent, Clip, Upload
from service.settings import Settings
from service.storage import open_store
from service.storage.keys import clip_source
from tests.actors import Actor
from tests.conftest import World, run_db
from tests.service.test_error_shape import assert_error
from tests.uploads.conftest import create, send, tus, unfinished_bytes, upload_all


@pytest.fixture
def member(world: World) -> tuple[Actor, str, Actor]:
    owner = world.admin()
    slug = world.community(owner)
    return world.join(owner, slug, "member"), slug, owner


def counts(settings: Settings) -> tuple[int, int]:
    async def work(session: AsyncSession) -> tuple[int, int]:
        return (int(await session.scalar(select(func.count(Clip.id))) or 0),
                int(await session.scalar(select(func.count(Upload.id))) or 0))

    return run_db(settings, work)


def the_clip(settings: Settings) -> Clip:
    async def work(session: AsyncSession) -> Clip:
        clip = await session.scalar(select(Clip))
        assert isinstance(clip, Clip)
        return clip

    return run_db(settings, work)


def test_discovery(client: object) -> None:
    response = client.options("/api/uploads")  # type: ignore[attr-defined]
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) >= {
        "creation", "termination", "expiration", "checksum"}
    assert int(response.headers["tus-max-size"]) == 500_000_000


def test_upload_in_pieces(member: tuple[Actor, str, Actor], media: dict[str, Path],
                          settings: Settings) -> None:
    """Three PATCHes make the clip `uploaded`, the object's SHA-256 equals the file's, and
    a probe job is queued."""
    actor, slug, _ = member
    data = media["story"].read_bytes()
    made = create(actor, slug, len(data), title="My first ride", prompt=None)
    assert made.status_code == 201 and made.headers["tus-resumable"] == "1.0.0"
    assert "upload-expires" in made.headers
    location = made.headers["location"]
    assert location.startswith("/api/uploads/")
    third = len(data) // 3
    for start, end in ((0, third), (third, 2 * third), (2 * third, len(data))):
        head = actor.request("HEAD", location, headers=tus())
        assert head.status_code == 200 and int(head.headers["upload-offset"]) == start
        assert int(head.headers["upload-length"]) == len(data)
        sent = send(actor, location, start, data[start:end])
        assert sent.status_code == 204 and int(sent.headers["upload-offset"]) == end
    clip = the_clip(settings)
    assert clip.state == "uploaded" and clip.size == len(data) and clip.title == "My first ride"
    assert clip.release_version == 1 and len(clip.release_sha256) == 64
    stored = hashlib.sha256(b"".join(open_store(settings).get(clip_source(clip.id))))
    assert stored.hexdigest() == hashlib.sha256(data).hexdigest()
    assert Redis.from_url(settings.redis_url).exists(f"rq:job:ingest-{clip.id}")
    assert unfinished_bytes(settings) == []
    mine = actor.get(f"/api/communities/{slug}/clips/mine").json()["clips"]
    assert [c["state"] for c in mine] == ["uploaded"]


def test_version_is_required(member: tuple[Actor, str, Actor]) -> None:
    actor, _, _ = member
    for headers in ({}, {"Tus-Resumable": "0.2.2"}):
        response = actor.post("/api/uploads", headers={"Upload-Length": "10", **headers})
        assert_error(response, 412, "tus_version")
        assert response.headers["tus-version"] == "1.0.0"


def test_length_is_required(member: tuple[Actor, str, Actor]) -> None:
    actor, _, _ = member
    assert_error(actor.post("/api/uploads", headers=tus()), 400, "bad_upload_length")
    assert_error(actor.post("/api/uploads", headers=tus(**{"Upload-Defer-Length": "1"})), 400,
                 "length_required")
    assert_error(actor.post("/api/uploads", headers=tus(**{"Upload-Length": "-5"})), 400,
                 "bad_upload_length")


def test_refusals_at_creation_leave_nothing(member: tuple[Actor, str, Actor],
                                            settings: Settings) -> None:
    """Too big, empty, no consent, stale consent, bad metadata: clear errors, no rows."""
    actor, slug, owner = member
    too_big = create(actor, slug, 600 * 1000 * 1000)
    error = assert_error(too_big, 413, "file_too_large")
    assert "600 MB" in error["message"] and "500 MB" in error["message"]
    assert_error(create(actor, slug, 0), 400, "empty_file")
    assert_error(create(actor, slug, 100, release=None), 422, "consent_required")
    owner.post(f"/api/communities/{slug}/release",
               json={"body": "A newer release text that members must accept first."})
    stale = assert_error(create(actor, slug, 100, release=1), 409, "release_changed")
    assert "version 2" in stale["hint"]
    bad_meta = actor.post("/api/uploads", headers=tus(**{
        "Upload-Length": "100", "Upload-Metadata": "community !!!notbase64"}))
    assert_error(bad_meta, 400, "bad_metadata")
    assert_error(create(actor, slug, 100, prompt=999), 404, "prompt_not_found")
    assert counts(settings) == (0, 0)
    assert create(actor, slug, 100, release=2).status_code == 201


def test_other_communities_are_out_of_reach(world: World, settings: Settings) -> None:
    """A member of A can't upload into B, nor see or touch an upload of someone else."""
    owner = world.admin()
    a = world.community(owner, "A")
    b = world.community(owner, "B")
    alice = world.join(owner, a, "member", "Alice")
    bob = world.join(owner, b, "member", "Bob")
    assert_error(create(alice, b, 100), 404, "community_not_found")
    assert_error(create(alice, "nowhere", 100), 404, "community_not_found")
    location = create(bob, b, 100).headers["location"]
    assert alice.request("HEAD", location, headers=tus()).status_code == 404
    assert_error(send(alice, location, 0, b"\x00" * 10), 404, "upload_not_found")
    assert_error(alice.request("DELETE", location, headers=tus()), 404, "upload_not_found")
    assert counts(settings) == (1, 1)


def test_filenames_are_only_names(member: tuple[Actor, str, Actor], media: dict[str, Path],
                                  settings: Settings) -> None:
    """Path characters in a filename are dropped; nothing lands outside the store."""
    actor, slug, _ = member
    data = media["story"].read_bytes()
    upload_all(actor, slug, data, filename="../../etc/passwd\\..\\evil.mp4")
    assert the_clip(settings).filename == "evil.mp4"
    assert not (settings.storage_dir.parent / "etc").exists()


def test_patch_errors(member: tuple[Actor, str, Actor], media: dict[str, Path]) -> None:
    actor, slug, _ = member
    data = media["story"].read_bytes()
    location = create(actor, slug, len(data)).headers["location"]
    wrong_type = actor.request("PATCH", location, content=data[:100], headers=tus(**{
        "Upload-Offset": "0", "Content-Type": "application/octet-stream"}))
    assert_error(wrong_type, 415, "bad_content_type")
    assert send(actor, location, 0, data[:100]).status_code == 204
    behind = send(actor, location, 0, data[:100])
    assert_error(behind, 409, "offset_mismatch")
    assert behind.headers["upload-offset"] == "100"
    assert_error(send(actor, location, 500, data[500:600]), 409, "offset_mismatch")
    assert_error(send(actor, location, 100, data[100:200], **{"Tus-Resumable": "2.0"}), 412,
                 "tus_version")
    assert_error(send(actor, "/api/uploads/not-an-upload", 0, data), 404, "upload_not_found")


def test_oversending_is_cut_off(member: tuple[Actor, str, Actor], media: dict[str, Path],
                                settings: Settings) -> None:
    """A declared body past Upload-Length is refused whole; a streamed one stops at the length."""
    actor, slug, _ = member
    data = media["story"].read_bytes()
    location = create(actor, slug, len(data)).headers["location"]
    assert_error(send(actor, location, 0, data + b"extra"), 413, "upload_overflow")
    assert actor.request("HEAD", location, headers=tus()).headers["upload-offset"] == "0"

    def streamed() -> object:
        yield data
        yield b"and then some more bytes"

    response = actor.request("PATCH", location, content=streamed(), headers=tus(**{
        "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
    assert_error(response, 413, "upload_overflow")
    assert response.headers["upload-offset"] == str(len(data))
    clip = the_clip(settings)
    assert clip.state == "uploaded"
    assert b"".join(open_store(settings).get(clip_source(clip.id))) == data


@pytest.mark.parametrize("content", [b"this is plain text, not a video at all\n" * 10,
                                     b"#EXTM3U\n#EXT-X-VERSION:3\nhttp://127.0.0.1/x.ts\n" * 4,
                                     b"\x89PNG\r\n\x1a\n" + b"\x00" * 200])
def test_non_video_is_refused_on_its_first_bytes(member: tuple[Actor, str, Actor],
                                                 settings: Settings, content: bytes) -> None:
    """A text file, playlist or image named .mp4 is refused at once; nothing stays behind."""
    actor, slug, _ = member
    location = create(actor, slug, len(content), filename="clip.mp4").headers["location"]
    error = assert_error(send(actor, location, 0, content), 415, "unsupported_type")
    assert "MP4, MOV or WebM" in error["hint"]
    assert counts(settings) == (0, 0)
    assert unfinished_bytes(settings) == []
    assert list(open_store(settings).list("clips/")) == []


def test_magic_is_checked_across_tiny_pieces(member: tuple[Actor, str, Actor],
                                             settings: Settings) -> None:
    """Sending the first bytes a few at a time does not dodge the type check."""
    actor, slug, _ = member
    content = b"GIF89a" + b"\x00" * 100
    location = create(actor, slug, len(content)).headers["location"]
    assert send(actor, location, 0, content[:5]).status_code == 204
    assert_error(send(actor, location, 5, content[5:30]), 415, "unsupported_type")
    assert counts(settings) == (0, 0)


def test_checksums(member: tuple[Actor, str, Actor], media: dict[str, Path]) -> None:
    """A piece whose checksum fails is dropped whole (460); a good one is kept."""
    actor, slug, _ = member
    data = media["story"].read_bytes()
    location = create(actor, slug, len(data)).headers["location"]
    piece = data[:4000]
    wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    bad = send(actor, location, 0, piece, **{"Upload-Checksum": f"sha1 {wrong}"})
    assert_error(bad, 460, "checksum_mismatch")
    assert actor.request("HEAD", location, headers=tus()).headers["upload-offset"] == "0"
    right = base64.b64encode(hashlib.sha1(piece).digest()).decode()
    good = send(actor, location, 0, piece, **{"Upload-Checksum": f"sha1 {right}"})
    assert good.status_code == 204 and good.headers["upload-offset"] == "4000"
    assert_error(send(actor, location, 4000, data[4000:5000],
                      **{"Upload-Checksum": "crc32 AAAA"}), 400, "bad_checksum_algorithm")


def test_termination(member: tuple[Actor, str, Actor], media: dict[str, Path],
                     settings: Settings) -> None:
    actor, slug, _ = member
    data = media["story"].read_bytes()
    location = create(actor, slug, len(data)).headers["location"]
    send(actor, location, 0, data[:1000])
    assert actor.request("DELETE", location, headers=tus()).status_code == 204
    assert counts(settings) == (0, 0) and unfinished_bytes(settings) == []
    assert actor.request("HEAD", location, headers=tus()).status_code == 404
    done = upload_all(actor, slug, data)
    assert_error(actor.request("DELETE", done, headers=tus()), 409, "upload_complete")


def test_concurrent_writers_are_locked_out(member: tuple[Actor, str, Actor],
                                           media: dict[str, Path], settings: Settings) -> None:
    """A holder that is alive is asked to let go; one that never does keeps the upload (423);
    a dead one's lock is broken at once."""
    actor, slug, _ = member
    data = media["story"].read_bytes()
    location = create(actor, slug, len(data)).headers["location"]
    upload_id = location.rsplit("/", 1)[1]
    redis = Redis.from_url(settings.redis_url)
    redis.set("kumpul:instance:other", "1", ex=30)  # a live app instance holds it
    redis.set(f"kumpul:upload-lock:{upload_id}", "other:abc", ex=30)
    assert_error(send(actor, location, 0, data), 423, "upload_locked")  # it didn't let go
    redis.delete("kumpul:instance:other")  # ... and then that instance dies
    assert send(actor, location, 0, data).status_code == 204


def test_consent_is_audited(member: tuple[Actor, str, Actor], media: dict[str, Path],
                            settings: Settings) -> None:
    actor, slug, _ = member
    upload_all(actor, slug, media["story"].read_bytes())

    async def actions(session: AsyncSession) -> list[str]:
        return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))

    assert run_db(settings, actions)[-2:] == ["consent.given", "clip.uploaded"]


def test_heartbeat_stops_even_mid_call() -> None:
    """Shutdown can't hang on the heartbeat, even if Redis never answers."""
    import asyncio
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from redis.asyncio import Redis as AsyncRedis

    from service.locks import BEAT_SECONDS, Heartbeat

    silent = socket.socket()  # accepts connections, never replies
    silent.bind(("127.0.0.1", 0))
    silent.listen()

    async def run() -> float:
        redis = AsyncRedis(host="127.0.0.1", port=silent.getsockname()[1], socket_timeout=60)
        beat = Heartbeat(redis)
        task = asyncio.create_task(beat.start())
        await asyncio.sleep(0.5)  # start() is stuck inside its first SET
        started = asyncio.get_running_loop().time()
        task.cancel()
        await beat.stop()
        return asyncio.get_running_loop().time() - started

    try:
        with ThreadPoolExecutor(1) as pool:  # a loop of its own (Playwright may hold this one)
            assert pool.submit(lambda: asyncio.run(run())).result() < 2 * BEAT_SECONDS + 1
    finally:
        silent.close()
