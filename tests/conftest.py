"""Fixtures: real databases (SQLite and PostgreSQL), real Redis, a real S3 server, the app.

Databases are migrated once per session; each test gets a clean copy (SQLite) or clean
tables (PostgreSQL). Redis tests use their own database index, flushed per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from redis import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient

from service.app import create_app
from service.db import migrate
from service.db.engine import async_sessions, make_async_engine
from service.db.models import Base, Community, User
from service.domain import accounts
from service.settings import Settings, load_settings
from tests.actors import Actor
from workers.context import JobContext, use

T = TypeVar("T")
pytest_plugins = ["tests.studio"]  # the moderation fixtures (studio, story_sources)

PG_ADMIN = os.environ.get("KUMPUL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# A redis-server of this test run's own, on a port chosen at start (or KUMPUL_TEST_REDIS);
# started only when the first test that needs Redis asks (`redis_started`).
REDIS_TEST_URL = os.environ.get("KUMPUL_TEST_REDIS", "")
_redis_server: subprocess.Popen[bytes] | None = None
PASSWORD = "correct horse battery"


# Tests that encode media with ffmpeg, connect aiortc peers or run several processes: the
# fast loop (`./scripts/test --fast`) leaves them out with the slow whole-system proofs.
HEAVY = ("tests/media/", "tests/workers/", "tests/live/", "tests/uploads/test_clients.py",
         "tests/uploads/test_nodes.py", "tests/cluster/")
LIGHT = ("tests/media/test_moments.py", "tests/live/test_aiortc_internals.py",
         "tests/live/test_chat_text.py", "tests/cluster/test_nodes.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        if where.startswith(HEAVY) and not where.startswith(LIGHT):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    """Choose this run's Redis port now (settings name it); parallel runs can't collide."""
    global REDIS_TEST_URL
    if not REDIS_TEST_URL:
        REDIS_TEST_URL = f"redis://127.0.0.1:{free_port()}/0"


def redis_started() -> str:
    """This run's Redis, started on first use; its URL (database 0)."""
    global _redis_server
    if _redis_server is None and not os.environ.get("KUMPUL_TEST_REDIS"):
        binary = shutil.which("redis-server")
        if binary is None:
            raise pytest.UsageError("redis-server is needed: scripts/bootstrap --dev installs it")
        port = int(REDIS_TEST_URL.rsplit(":", 1)[1].split("/")[0])
        _redis_server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--daemonize", "no"], stdout=subprocess.DEVNULL)
        wait_for_port(port)
    return REDIS_TEST_URL


def pytest_unconfigure(config: pytest.Config) -> None:
    if _redis_server is not None:
        _redis_server.terminate()
        _redis_server.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


# --- databases --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    migrate.upgrade(f"sqlite+pysqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"kumpul_test_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    migrate.upgrade(url.replace("postgresql://", "postgresql+psycopg://"))
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


DATABASES = os.environ.get("KUMPUL_TEST_DATABASES", "sqlite,postgresql").split(",")


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "kumpul.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return url


@pytest.fixture
def redis_url() -> str:
    """This run's Redis, database 0, empty."""
    url = redis_started()
    Redis.from_url(url).flushdb()
    return url


# --- settings and app -------------------------------------------------------------------

def make_settings(tmp_path: Path, **env: str) -> Settings:
    base = {
        "KUMPUL_DATA_DIR": str(tmp_path / "data"),
        "KUMPUL_REDIS_URL": REDIS_TEST_URL,
        "KUMPUL_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "KUMPUL_PUBLIC_URL": "http://testserver",
        "KUMPUL_LOG_LEVEL": "warning",
        # tests read English unless they ask for Indonesian (Kumpul's own default)
        "KUMPUL_LANGUAGE": "en",
    }
    base.update(env)
    return load_settings(base, env_file=None)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@contextlib.contextmanager
def jobs_using(settings: Settings) -> Iterator[JobContext]:
    """Jobs called in this process (inline, as a worker would run them) use `settings`."""
    ctx = JobContext(settings)
    previous = use(ctx)
    try:
        yield ctx
    finally:
        use(previous)
        ctx.close()


@pytest.fixture
def jobs_here(settings: Settings) -> Iterator[JobContext]:
    with jobs_using(settings) as ctx:
        yield ctx


def run_db(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run domain code against the test database in its own transaction."""
    async def run() -> T:
        engine = make_async_engine(settings.async_database_url)
        try:
            async with async_sessions(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return run_async(run())


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from a test. A thread of its own: Playwright's sync API
    keeps a loop running in the main thread of a worker that ran a browser test before."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


class World:
    """Builds people and communities the way users do: through the API where possible."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._n = 0

    def admin(self, name: str = "Ana Admin") -> Actor:
        email = f"admin{self._next()}@example.com"

        async def work(session: AsyncSession) -> User:
            return await accounts.create_user(session, email=email, display_name=name,
                                              password=PASSWORD, is_admin=True)

        run_db(self.settings, work)
        return Actor.login(self.client, email, PASSWORD)

    def community(self, owner: Actor, name: str = "Trail Runners") -> str:
        response = owner.post("/api/communities", json={"name": f"{name} {self._next()}"})
        assert response.status_code == 201, response.text
        return str(response.json()["slug"])

    def join(self, owner: Actor, slug: str, role: str = "member",
             name: str = "Mia Member") -> Actor:
        response = owner.post(f"/api/communities/{slug}/invites", json={"role": role})
        assert response.status_code == 201, response.text
        token = response.json()["url"].rsplit("/", 1)[1]
        email = f"{role}{self._next()}@example.com"
        actor = Actor(self.client)
        joined = actor.post(f"/api/invites/{token}/accept",
                            json={"email": email, "display_name": name, "password": PASSWORD})
        assert joined.status_code == 201, joined.text
        actor.csrf = joined.json()["csrf_token"]
        actor.user_id = joined.json()["user"]["id"]
        actor.email = email
        return actor

    def _next(self) -> int:
        self._n += 1
        return self._n


@pytest.fixture
def world(client: TestClient, settings: Settings) -> World:
    return World(client, settings)


def community_id(settings: Settings, slug: str) -> int:
    async def work(session: AsyncSession) -> int:
        found = await session.scalar(select(Community.id).where(Community.slug == slug))
        assert found is not None
        return int(found)

    return run_db(settings, work)


# --- S3 ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """moto's standalone S3 server over real HTTP on 127.0.0.1."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield {"endpoint": f"127.0.0.1:{port}", "access_key": "kumpul-test",
               "secret_key": "kumpul-test-secret"}
    finally:
        proc.terminate()
        proc.wait(10)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process (worker, CLI, server) these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMPUL_")}
    return {**env, **settings.as_environ()}


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is `pid`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


class ServerProcess:
    """`kumpul web` as a real process on a free port; can be killed and started again."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = free_port()
        self.settings = settings.replace(port=self.port,
                                         public_url=f"http://127.0.0.1:{self.port}")
        self.url = self.settings.public_url
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log.open("a") as sink:
            self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "web"],
                                         env=settings_env(self.settings), stdout=sink,
                                         stderr=subprocess.STDOUT)
        wait_for_port(self.port, 30)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, as in a crash."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@pytest.fixture
def server_process(settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(settings, tmp_path / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def two_nodes(settings: Settings, tmp_path: Path) -> Iterator[tuple[ServerProcess,
                                                                    ServerProcess]]:
    """Two `kumpul web` nodes sharing the database, Redis and the store."""
    local = settings.replace(ice_host_addresses=("127.0.0.1",))
    first = ServerProcess(local, tmp_path / "node-a.log").start()
    second = ServerProcess(local, tmp_path / "node-b.log").start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()
