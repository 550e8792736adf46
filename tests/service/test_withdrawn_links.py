"""Withdrawal ends access at once: every signed link to a clip's objects (rendition, poster,
filmstrip) stops working the moment the member withdraws, before the purge job runs, with
the local store and with S3 (whose presigned URLs could not be revoked, so clips never get
one)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from service.settings import Settings
from service.storage import open_store
from service.storage.s3 import S3Store
from tests import media_files
from tests.conftest import ServerProcess, make_settings
from tests.remote import member_of_new_community
from tests.workers.test_fair_ingest import mine, send
from workers.context import JobContext
from workers.ingest import ingest_clip


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str,
             redis_url: str) -> Settings:
    if request.param == "local":
        return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url,
                             KUMPUL_REDIS_URL=redis_url)
    s3: dict[str, Any] = request.getfixturevalue("s3_server")
    found = make_settings(
        tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
        KUMPUL_STORAGE="s3", KUMPUL_S3_ENDPOINT=s3["endpoint"],
        KUMPUL_S3_ACCESS_KEY=s3["access_key"], KUMPUL_S3_SECRET_KEY=s3["secret_key"],
        KUMPUL_S3_BUCKET=f"links-{uuid.uuid4().hex[:12]}")
    store = open_store(found)
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    return found


def test_withdrawal_ends_every_link_at_once(server_process: ServerProcess, settings: Settings,
                                            jobs_here: JobContext, tmp_path: Path) -> None:
    who = member_of_new_community(server_process)
    send(server_process, who.token, who.slug,
         media_files.story_mp4(tmp_path / "s.mp4").read_bytes())
    (clip,) = mine(server_process, who.token, who.slug)
    assert ingest_clip(clip["id"]) == "ready_for_review"
    owner = {"Authorization": f"Bearer {who.owner_token}"}
    review = httpx.get(f"{server_process.url}/api/communities/{who.slug}/review/{clip['id']}",
                       headers=owner, timeout=30)
    assert review.status_code == 200, review.text
    media = review.json()["media"]
    assert set(media) == {"web", "poster", "filmstrip"}
    for link in media.values():
        assert link.startswith(f"{server_process.url}/objects/clips/{clip['id']}/")
        assert httpx.get(link, timeout=30).status_code == 200
    part = httpx.get(media["web"], headers={"Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206 and len(part.content) == 100

    withdrawn = httpx.post(
        f"{server_process.url}/api/communities/{who.slug}/clips/{clip['id']}/withdraw",
        headers={"Authorization": f"Bearer {who.token}"}, timeout=30)
    assert withdrawn.status_code == 200, withdrawn.text
    for link in media.values():
        gone = httpx.get(link, timeout=30)
        assert gone.status_code == 410, gone.text
        assert gone.json()["error"]["code"] == "clip_withdrawn"
    # the objects are still there: the purge job has not run, the links ended anyway
    store = open_store(settings)
    assert store.exists(f"clips/{clip['id']}/v1/web.mp4")
