"""Invite links: expiry, uses, revocation, and signups that leave nothing half-written."""

from __future__ import annotations

from datetime import timedelta

import httpx2 as httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Invite, User, utcnow
from tests.actors import Actor
from tests.conftest import PASSWORD, World, run_db
from tests.service.test_error_shape import assert_error


def new_invite(owner: Actor, slug: str, **body: object) -> tuple[int, str]:
    response = owner.post(f"/api/communities/{slug}/invites", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"]), str(response.json()["url"].rsplit("/", 1)[1])


def signup(world: World, token: str, email: str = "new@example.com",
           password: str = PASSWORD) -> tuple[Actor, httpx.Response]:
    actor = Actor(world.client)
    response = actor.post(f"/api/invites/{token}/accept",
                          json={"email": email, "display_name": "New Person",
                                "password": password})
    return actor, response


def user_count(world: World) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count(User.id))) or 0)

    return run_db(world.settings, work)


def test_preview_and_join(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    _, token = new_invite(owner, slug, role="host")
    preview = world.client.get(f"/api/invites/{token}")
    assert preview.json()["role"] == "host" and preview.json()["community"]["slug"] == slug
    actor, response = signup(world, token)
    assert response.status_code == 201
    assert actor.get("/api/me").json()["communities"][0]["role"] == "host"


def test_unknown_token(world: World) -> None:
    assert_error(world.client.get("/api/invites/not-a-token"), 404, "invite_invalid")


def test_expired_invite(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    invite_id, token = new_invite(owner, slug)

    async def expire(session: AsyncSession) -> None:
        await session.execute(update(Invite).where(Invite.id == invite_id)
                              .values(expires_at=utcnow() - timedelta(seconds=1)))

    run_db(world.settings, expire)
    assert_error(world.client.get(f"/api/invites/{token}"), 410, "invite_expired")
    before = user_count(world)
    assert_error(signup(world, token)[1], 410, "invite_expired")
    assert user_count(world) == before


def test_invite_is_used_up(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    _, token = new_invite(owner, slug, max_uses=1)
    assert signup(world, token, "a@example.com")[1].status_code == 201
    before = user_count(world)
    late = signup(world, token, "b@example.com")[1]
    assert_error(late, 410, "invite_used_up")
    assert user_count(world) == before


def test_revoked_invite(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    invite_id, token = new_invite(owner, slug)
    assert owner.delete(f"/api/communities/{slug}/invites/{invite_id}").status_code == 204
    assert_error(world.client.get(f"/api/invites/{token}"), 410, "invite_revoked")
    assert_error(owner.delete(f"/api/communities/{slug}/invites/{invite_id}"), 404,
                 "invite_not_found")


def test_failed_signup_leaves_nothing(world: World) -> None:
    """A weak password or a taken email creates no user and spends no use of the link."""
    owner = world.admin()
    slug = world.community(owner)
    invite_id, token = new_invite(owner, slug, max_uses=1)
    before = user_count(world)
    assert_error(signup(world, token, password="short")[1],
                 422, "weak_password")
    assert_error(signup(world, token, email=str(owner.email))[1],
                 409, "email_taken")
    assert_error(signup(world, token, email="not-an-email")[1],
                 422, "invalid_email")
    assert user_count(world) == before
    invites = owner.get(f"/api/communities/{slug}/invites").json()["invites"]
    assert [(i["id"], i["uses"]) for i in invites] == [(invite_id, 0)]


def test_logged_in_member_joins_another_community(world: World) -> None:
    """A logged-in person joins with their account; joining twice spends no extra use."""
    owner = world.admin()
    first = world.community(owner, "Coffee")
    second = world.community(owner, "Bikes")
    member = world.join(owner, first)
    _, token = new_invite(owner, second, max_uses=2)
    assert member.post(f"/api/invites/{token}/accept").status_code == 201
    assert member.post(f"/api/invites/{token}/accept").status_code == 200  # already in
    uses = owner.get(f"/api/communities/{second}/invites").json()["invites"][0]["uses"]
    assert uses == 1
    slugs = {c["slug"] for c in member.get("/api/me").json()["communities"]}
    assert slugs == {first, second}


def test_invite_input_is_checked(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    for body in ({"role": "king"}, {"max_uses": 0}, {"days": 1000}, {"max_uses": "lots"}):
        response = owner.post(f"/api/communities/{slug}/invites", json=body)
        assert_error(response, 422, "invalid_invite")
