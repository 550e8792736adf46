"""Logins, sessions, CSRF, personal tokens and the login rate limit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient

from service.db.models import User, WebSession, utcnow
from service.settings import Settings
from tests.actors import Actor
from tests.conftest import PASSWORD, World, run_db
from tests.service.test_error_shape import assert_error


def test_login_sets_a_safe_cookie(world: World, client: TestClient) -> None:
    """The session cookie is HttpOnly and SameSite=Lax; the password is stored as Argon2id."""
    owner = world.admin()
    response = client.post("/api/auth/login", json={"email": owner.email, "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert "kumpul_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http public URL in tests

    async def stored(session: AsyncSession) -> str:
        found = await session.scalar(select(User.password_hash).where(User.email == owner.email))
        return str(found)

    assert run_db(world.settings, stored).startswith("$argon2id$")


def test_secure_cookie_behind_https(tmp_path: object, settings: Settings) -> None:
    from service.app import create_app
    from tests.conftest import World as W

    https = settings.replace(public_url="https://kumpul.example.com")
    with TestClient(create_app(https), base_url="https://kumpul.example.com") as client:
        owner = W(client, https).admin()
        response = client.post("/api/auth/login",
                               json={"email": owner.email, "password": PASSWORD})
        assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_and_unknown_email_look_alike(world: World, client: TestClient) -> None:
    owner = world.admin()
    wrong = client.post("/api/auth/login", json={"email": owner.email, "password": "nope" * 4})
    unknown = client.post("/api/auth/login",
                          json={"email": "who@example.com", "password": "x" * 12})
    assert assert_error(wrong, 401, "invalid_credentials") == \
        assert_error(unknown, 401, "invalid_credentials")


def test_login_attempts_are_rate_limited(world: World, client: TestClient) -> None:
    """After the allowed failures, even the right password waits, with Retry-After."""
    owner = world.admin()
    limit = world.settings.login_attempts
    for _ in range(limit):
        bad = client.post("/api/auth/login", json={"email": owner.email, "password": "w" * 12})
        assert bad.status_code == 401
    blocked = client.post("/api/auth/login", json={"email": owner.email, "password": PASSWORD})
    assert_error(blocked, 429, "too_many_attempts")
    assert 0 < int(blocked.headers["retry-after"]) <= world.settings.login_window_seconds


def test_csrf_is_required_for_cookie_state_changes(world: World) -> None:
    """A cookie-authenticated POST without the CSRF token is refused and changes nothing."""
    owner = world.admin()
    slug = world.community(owner)
    refused = owner.post(f"/api/communities/{slug}/invites", json={}, csrf=False)
    assert_error(refused, 403, "csrf_failed")
    forged = owner.post(f"/api/communities/{slug}/invites", json={},
                        headers={"X-CSRF-Token": "forged"})
    assert_error(forged, 403, "csrf_failed")
    assert owner.get(f"/api/communities/{slug}/invites").json()["invites"] == []
    assert owner.post(f"/api/communities/{slug}/invites", json={}).status_code == 201


def test_bearer_tokens_need_no_csrf_and_can_be_revoked(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    script = owner.with_token()
    assert script.token is not None and script.token.startswith("kmp_")
    assert script.post(f"/api/communities/{slug}/invites", json={}).status_code == 201
    listed = owner.get("/api/tokens").json()["tokens"]
    assert [t["name"] for t in listed] == ["script"]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None
    assert owner.delete(f"/api/tokens/{listed[0]['id']}").status_code == 204
    assert_error(script.get("/api/me"), 401, "invalid_token")
    assert_error(owner.delete(f"/api/tokens/{listed[0]['id']}"), 404, "token_not_found")


def test_malformed_authorization_header(client: TestClient) -> None:
    response = client.get("/api/me", headers={"Authorization": "Basic abc"})
    assert_error(response, 401, "invalid_token")


def test_logout_ends_the_session(world: World) -> None:
    owner = world.admin()
    cookie = dict(owner.cookies)
    assert owner.post("/api/auth/logout").status_code == 204
    stale = Actor(owner.client)
    stale.cookies = cookie
    assert_error(stale.get("/api/me"), 401, "not_authenticated")


def test_expired_session(world: World) -> None:
    """An expired login says so, with a hint to log in again."""
    owner = world.admin()

    async def expire(session: AsyncSession) -> None:
        await session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(minutes=1)))

    run_db(world.settings, expire)
    error = assert_error(owner.get("/api/me"), 401, "session_expired")
    assert "Log in" in error["hint"]


def test_a_tokens_use_is_recorded_on_reads_too(world: World) -> None:
    """A token used only for reads (their sessions never commit) shows when it was last
    used: the use is stamped in a short transaction of its own, at most once in
    `TOKEN_USE_STAMP` (a read-only request never takes the database's write lock for it
    again, on any node)."""
    owner = world.admin()
    slug = world.community(owner)
    script = owner.with_token()
    assert script.get(f"/api/communities/{slug}/live").status_code == 200
    first = owner.get("/api/tokens").json()["tokens"][0]["last_used_at"]
    assert first is not None
    assert script.get("/api/me").status_code == 200
    assert owner.get("/api/tokens").json()["tokens"][0]["last_used_at"] == first
