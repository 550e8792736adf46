"""Schema migrations: upgrade to head, and the start-up check that refuses an old schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine

MIGRATIONS = Path(__file__).with_name("migrations")


class NotMigrated(RuntimeError):
    """The database schema is not at the version this code needs."""


def alembic_config(sync_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def upgrade(sync_url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (creating the SQLite folder if needed)."""
    if sync_url.startswith("sqlite") and ":///" in sync_url:
        path = sync_url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(sync_url), revision)


def downgrade(sync_url: str, revision: str) -> None:
    command.downgrade(alembic_config(sync_url), revision)


def check_current(connection: Connection) -> None:
    """Raise NotMigrated, naming the fix, unless the schema is at head."""
    current = MigrationContext.configure(connection).get_current_revision()
    head = head_revision()
    if current != head:
        found = "is empty" if current is None else f"is at schema version {current}"
        raise NotMigrated(
            f"The database {found}; this Kumpul needs version {head}. Run `kumpul migrate` first."
        )


def check_url(sync_url: str) -> None:
    engine = create_engine(sync_url)
    try:
        with engine.connect() as conn:
            check_current(conn)
    finally:
        engine.dispose()
