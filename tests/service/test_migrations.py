"""Migrations build exactly the models, both ways, and the app refuses an old schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from service.app import create_app
from service.db import migrate
from service.db.models import Base
from service.settings import Settings, driver_url
from tests.conftest import make_settings


def test_migrations_match_models(database_url: str) -> None:
    """Autogenerate finds nothing to add: models and migrations agree."""
    engine = create_engine(driver_url(database_url, sync=True))
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'k.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    with pytest.raises(migrate.NotMigrated, match="is empty"):
        migrate.check_url(url)
    migrate.upgrade(url)
    migrate.check_url(url)


def test_app_refuses_an_unmigrated_database(tmp_path: Path, redis_url: str) -> None:
    """Start-up fails with the command that fixes it."""
    settings: Settings = make_settings(tmp_path, KUMPUL_DATABASE_URL=f"sqlite:///{tmp_path}/new.db")
    with pytest.raises(migrate.NotMigrated, match="kumpul migrate"), \
            TestClient(create_app(settings)):
        pass
