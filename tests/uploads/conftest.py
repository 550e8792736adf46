"""Upload tests run on both stores (local folder, S3 over HTTP) and both databases."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest

from service.settings import Settings
from service.storage import open_store
from service.storage.s3 import S3Store
from tests import media_files
from tests.actors import Actor
from tests.conftest import make_settings


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str,
             redis_url: str) -> Settings:
    env = {"KUMPUL_DATABASE_URL": database_url, "KUMPUL_REDIS_URL": redis_url}
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        env.update(KUMPUL_STORAGE="s3", KUMPUL_S3_ENDPOINT=server["endpoint"],
                   KUMPUL_S3_ACCESS_KEY=server["access_key"],
                   KUMPUL_S3_SECRET_KEY=server["secret_key"],
                   KUMPUL_S3_BUCKET=f"t-{uuid.uuid4().hex[:12]}")
    found = make_settings(tmp_path, **env)
    store = open_store(found)
    if isinstance(store, S3Store):
        store.ensure_bucket()
    return found


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    return {
        "story": media_files.story_mp4(folder / "story.mp4"),
        "long": media_files.story_mp4(folder / "long.mp4", seconds=4),
        "webm": media_files.webm_without_duration(folder / "recorded.webm"),
        "audio_only": media_files.audio_only_mp4(folder / "voice.mp4"),
    }


def unfinished_bytes(settings: Settings) -> list[str]:
    """Where the bytes of unfinished uploads live: the local store's staging files, the S3
    store's stored tails, and spool files (which must never outlive a request)."""
    found = [i.key for i in open_store(settings).list("clips/") if "/upload/" in i.key]
    for folder in (settings.spool_dir, settings.storage_dir / ".uploads"):
        found += [str(p) for p in folder.iterdir()] if folder.exists() else []
    return found


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def tus(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": "1.0.0", **extra}


def metadata(**values: object) -> str:
    return ",".join(f"{k} {b64(str(v))}" for k, v in values.items())


def create(actor: Actor, slug: str, length: int, **meta: object) -> httpx.Response:
    values: dict[str, object] = {"community": slug, "release": 1, "filename": "story.mp4"}
    values.update(meta)
    values = {k: v for k, v in values.items() if v is not None}
    return actor.post("/api/uploads", headers=tus(**{"Upload-Length": str(length),
                                                     "Upload-Metadata": metadata(**values)}))


def send(actor: Actor, location: str, offset: int, data: bytes,
         **headers: str) -> httpx.Response:
    return actor.request("PATCH", location, content=data, headers=tus(**{
        "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
        **headers}))


def upload_all(actor: Actor, slug: str, data: bytes, pieces: int = 3,
               **meta: object) -> str:
    """Create and send an upload in `pieces` PATCHes; returns its location."""
    made = create(actor, slug, len(data), **meta)
    assert made.status_code == 201, made.text
    location = made.headers["location"]
    step = max(1, -(-len(data) // pieces))
    for start in range(0, len(data), step):
        sent = send(actor, location, start, data[start:start + step])
        assert sent.status_code == 204, sent.text
    return location
