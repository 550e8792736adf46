"""The reel journeys again with the MinIO/S3 adapter over the wire (moto's server): pieces,
renders and the public video's ranges come from S3."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from service.storage import open_store
from service.storage.s3 import S3Store
from tests.conftest import make_settings
from tests.workers.test_reels import (  # noqa: F401  (collected here with S3 settings)
    test_compose_render_publish_unpublish,
    test_withdrawal_chain,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str,
             s3_server: dict[str, Any]) -> Settings:
    found = make_settings(
        tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
        KUMPUL_STORAGE="s3", KUMPUL_S3_ENDPOINT=s3_server["endpoint"],
        KUMPUL_S3_ACCESS_KEY=s3_server["access_key"],
        KUMPUL_S3_SECRET_KEY=s3_server["secret_key"],
        KUMPUL_S3_BUCKET=f"reels-{uuid.uuid4().hex[:12]}")
    store = open_store(found)
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    return found
