"""The `kumpul` command on a fresh folder: migrate, owner, community, invite, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from service.app import create_app
from tests import conftest
from tests.conftest import PASSWORD, make_settings


def kumpul(cwd: Path, *args: str, stdin: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KUMPUL_")}
    base.update({"KUMPUL_REDIS_URL": conftest.REDIS_TEST_URL, "KUMPUL_LOG_LEVEL": "warning"})
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=cwd, env=base,
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_admin_commands(tmp_path: Path, redis_url: str) -> None:
    """From nothing to a working invite link with CLI commands alone (embedded defaults)."""
    assert "schema version" in kumpul(tmp_path, "migrate").stdout
    owner = kumpul(tmp_path, "create-owner", "--email", "Owner@Example.com", "--name", "Olu",
                   "--password-stdin", stdin=PASSWORD + "\n")
    assert owner.returncode == 0, owner.stderr
    made = kumpul(tmp_path, "create-community", "--name", "Coffee Club", "--owner",
                  "owner@example.com")
    assert made.returncode == 0 and "'coffee-club'" in made.stdout, made.stderr
    link = kumpul(tmp_path, "invite", "--community", "coffee-club", "--role", "host")
    assert link.returncode == 0, link.stderr
    token = link.stdout.strip().rsplit("/", 1)[1]

    settings = make_settings(tmp_path, KUMPUL_DATA_DIR=str(tmp_path / "data"))
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/api/invites/{token}").json()["role"] == "host"
    assert (tmp_path / "data" / "kumpul.db").is_file()


def test_cli_errors_are_clear(tmp_path: Path, redis_url: str) -> None:
    unmigrated = kumpul(tmp_path, "web")
    assert unmigrated.returncode == 2 and "kumpul migrate" in unmigrated.stderr
    assert "Traceback" not in unmigrated.stderr
    bad = kumpul(tmp_path, "migrate", env={"KUMPUL_PORT": "http"})
    assert bad.returncode == 2 and "KUMPUL_PORT='http'" in bad.stderr
    kumpul(tmp_path, "migrate")
    weak = kumpul(tmp_path, "create-owner", "--email", "a@example.com", "--name", "A",
                  "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "Passwords need" in weak.stderr
    missing = kumpul(tmp_path, "invite", "--community", "ghost")
    assert missing.returncode != 0 and "no community 'ghost'" in missing.stderr


def test_embedded_workers_keep_long_work_off_the_short_lane() -> None:
    """`kumpul serve`'s workers: with three, short stories have a lane that never takes a
    heavy clip, a reel or a recording; with two, short and long work are apart; one worker
    serves every queue."""
    from service.queue import QUEUE_NAMES, lanes

    three = lanes(3)
    assert three[0] == ("ingest", "default")
    assert {q for lane in three for q in lane} == set(QUEUE_NAMES)
    assert "heavy" not in lanes(2)[0] and "live" not in lanes(2)[0]
    assert lanes(1) == [QUEUE_NAMES]
