"""Login limits against a real server process: per address, per (address, account) pair,
never a lockout of the account by strangers (its logins slow down instead), and a client
address that `X-Forwarded-For` changes only when the request comes from a trusted proxy."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import User
from service.domain import accounts
from service.settings import Settings
from tests.conftest import PASSWORD, ServerProcess, make_settings, run_db


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str,
             request: pytest.FixtureRequest) -> Settings:
    trusted = getattr(request, "param", "127.0.0.1")
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
                         KUMPUL_LOGIN_ATTEMPTS="3", KUMPUL_LOGIN_ADDRESS_ATTEMPTS="6",
                         KUMPUL_TRUSTED_PROXIES=trusted)


def owner(settings: Settings) -> None:
    async def work(session: AsyncSession) -> User:
        return await accounts.create_user(session, email="owner@example.com",
                                          display_name="Owner", password=PASSWORD)

    run_db(settings, work)


def login(server: ServerProcess, email: str, password: str, address: str) -> int:
    answer = httpx.post(f"{server.url}/api/auth/login", timeout=30,
                        json={"email": email, "password": password},
                        headers={"X-Forwarded-For": address})
    return answer.status_code


@pytest.mark.parametrize("settings", ["10.9.9.9"], indirect=True)
def test_a_header_does_not_buy_fresh_attempts(server_process: ServerProcess) -> None:
    """The server is not behind 10.9.9.9, so every request is from 127.0.0.1 whatever
    X-Forwarded-For says: the address limit (6) holds."""
    statuses = [login(server_process, f"n{n}@example.com", "wrong", f"203.0.113.{n}")
                for n in range(8)]
    assert statuses == [401] * 6 + [429] * 2


def test_strangers_cannot_lock_the_owner_out(server_process: ServerProcess,
                                             settings: Settings) -> None:
    """Behind a trusted proxy: an address that guessed 3 times for an account is refused for
    that account (429) but not for others; the owner, from their own address, still gets in
    after strangers failed 6 times, only slowed."""
    owner(settings)
    stranger, other, mine = "203.0.113.5", "203.0.113.6", "198.51.100.7"
    assert [login(server_process, "owner@example.com", "wrong", stranger)
            for _ in range(4)] == [401, 401, 401, 429]
    assert login(server_process, "someone@example.com", "wrong", stranger) == 401
    assert [login(server_process, "owner@example.com", "wrong", other)
            for _ in range(3)] == [401] * 3
    started = time.perf_counter()
    assert login(server_process, "owner@example.com", PASSWORD, mine) == 200
    assert time.perf_counter() - started >= 1.4  # 6 failures, 3 over the limit: 1.5 s


def test_the_address_limit_spans_accounts(server_process: ServerProcess) -> None:
    statuses = [login(server_process, f"n{n}@example.com", "wrong", "203.0.113.9")
                for n in range(7)]
    assert statuses == [401] * 6 + [429]
    assert login(server_process, "fresh@example.com", "wrong", "203.0.113.10") == 401
