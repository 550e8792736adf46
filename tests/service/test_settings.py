"""Settings are read once, cast, validated, and name the variable when wrong."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from service.settings import SettingsError, load_settings


def test_embedded_defaults(tmp_path: Path) -> None:
    """With nothing set, Kumpul uses SQLite, a local folder and the local Redis."""
    settings = load_settings({"KUMPUL_DATA_DIR": str(tmp_path)}, env_file=None)
    assert settings.database_url == f"sqlite:///{tmp_path}/kumpul.db"
    assert settings.async_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.sync_database_url.startswith("sqlite+pysqlite:///")
    assert settings.storage == "local" and settings.storage_dir == tmp_path / "objects"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert not settings.secure_cookies


def test_generated_secret_is_private_and_stable(tmp_path: Path) -> None:
    """The embedded secret is created once, owner-readable only, and reused."""
    first = load_settings({"KUMPUL_DATA_DIR": str(tmp_path)}, env_file=None).secret_key
    second = load_settings({"KUMPUL_DATA_DIR": str(tmp_path)}, env_file=None).secret_key
    assert first == second and len(first) >= 32
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


@pytest.mark.parametrize(("env", "named"), [
    ({"KUMPUL_PORT": "eighty"}, "KUMPUL_PORT='eighty'"),
    ({"KUMPUL_PORT": "70000"}, "KUMPUL_PORT"),
    ({"KUMPUL_DATABASE_URL": "mysql://x/y"}, "KUMPUL_DATABASE_URL"),
    ({"KUMPUL_STORAGE": "ftp"}, "KUMPUL_STORAGE='ftp': expected one of local, s3"),
    ({"KUMPUL_S3_SECURE": "maybe"}, "KUMPUL_S3_SECURE"),
    ({"KUMPUL_S3_ENDPOINT": "http://minio:9000"}, "KUMPUL_S3_ENDPOINT"),
    ({"KUMPUL_S3_BUCKET": "Bad_Bucket"}, "KUMPUL_S3_BUCKET"),
    ({"KUMPUL_STORAGE": "s3"}, "KUMPUL_S3_ACCESS_KEY"),
    ({"KUMPUL_SECRET_KEY": "short"}, "KUMPUL_SECRET_KEY=(hidden)"),
    ({"KUMPUL_PUBLIK_URL": "http://x"}, "KUMPUL_PUBLIK_URL: unknown setting"),
    ({"KUMPUL_WEBHOOK_ALLOW_HOSTS": "http://receiver:8080"}, "KUMPUL_WEBHOOK_ALLOW_HOSTS"),
    ({"KUMPUL_WEBHOOK_RETRY_SCHEDULE": "5,soon"}, "KUMPUL_WEBHOOK_RETRY_SCHEDULE='5,soon'"),
    ({"KUMPUL_WEBHOOK_RETRY_SCHEDULE": "0"}, "KUMPUL_WEBHOOK_RETRY_SCHEDULE"),
    ({"KUMPUL_WEBHOOK_TIMEOUT_SECONDS": "600"}, "KUMPUL_WEBHOOK_TIMEOUT_SECONDS"),
])
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], named: str) -> None:
    """Every bad value is refused with the variable's name (secrets are not echoed)."""
    with pytest.raises(SettingsError) as info:
        load_settings({"KUMPUL_DATA_DIR": str(tmp_path), **env}, env_file=None)
    assert named in str(info.value)
    assert "short" not in str(info.value) or "SECRET" not in named


def test_environment_beats_dotenv(tmp_path: Path) -> None:
    """`.env` supplies values; the process environment overrides them."""
    env_file = tmp_path / ".env"
    env_file.write_text("KUMPUL_PORT=9001\nKUMPUL_LOG_LEVEL=debug\n")
    settings = load_settings({"KUMPUL_DATA_DIR": str(tmp_path), "KUMPUL_PORT": "9002"},
                             env_file=env_file)
    assert settings.port == 9002 and settings.log_level == "debug"


def test_https_public_url_means_secure_cookies(tmp_path: Path) -> None:
    settings = load_settings({"KUMPUL_DATA_DIR": str(tmp_path),
                              "KUMPUL_PUBLIC_URL": "https://stories.example.com/"}, env_file=None)
    assert settings.secure_cookies and settings.public_url == "https://stories.example.com"


def test_public_url_follows_the_port_unless_set() -> None:
    """Links (the first-owner link, invites) point where the app really listens."""
    moved = load_settings({"KUMPUL_PORT": "8765", "KUMPUL_DATA_DIR": "/tmp/kumpul-settings"},
                          env_file=None)
    assert moved.public_url == "http://127.0.0.1:8765"
    proxied = load_settings({"KUMPUL_PORT": "8765", "KUMPUL_DATA_DIR": "/tmp/kumpul-settings",
                             "KUMPUL_PUBLIC_URL": "https://club.example.org/"}, env_file=None)
    assert proxied.public_url == "https://club.example.org"


def test_webhook_settings_reach_a_child_process(tmp_path: Path) -> None:
    """Lists of hosts and of seconds survive the trip through a worker's environment."""
    settings = load_settings({"KUMPUL_DATA_DIR": str(tmp_path),
                              "KUMPUL_WEBHOOK_ALLOW_HOSTS": "Receiver.Internal., 10.0.0.7",
                              "KUMPUL_WEBHOOK_RETRY_SCHEDULE": "1, 2,3"}, env_file=None)
    assert settings.webhook_allow_hosts == ("receiver.internal", "10.0.0.7")
    assert settings.webhook_retry_schedule == (1, 2, 3)
    again = load_settings(settings.as_environ(), env_file=None)
    assert again.webhook_allow_hosts == settings.webhook_allow_hosts
    assert again.webhook_retry_schedule == settings.webhook_retry_schedule
