"""Roles are enforced in one place: outsiders see 404, members without the right see 403."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.roles import GRANTS, Permission, Role, allows
from tests.actors import Actor
from tests.conftest import World, community_id, run_db
from tests.service.test_error_shape import assert_error

# (method, path, body) for every community-scoped API route; {slug}, {uid}, {iid} filled in.
COMMUNITY_ROUTES = [
    ("GET", "/api/communities/{slug}", None),
    ("GET", "/api/communities/{slug}/members", None),
    ("PATCH", "/api/communities/{slug}/members/{uid}", {"role": "host"}),
    ("DELETE", "/api/communities/{slug}/members/{uid}", None),
    ("GET", "/api/communities/{slug}/invites", None),
    ("POST", "/api/communities/{slug}/invites", {"role": "member"}),
    ("DELETE", "/api/communities/{slug}/invites/{iid}", None),
    ("POST", "/api/communities/{slug}/release", {"body": "A new release text for everyone here."}),
    ("GET", "/api/communities/{slug}/audit", None),
]
OWNER_ONLY = {p for m, p, _ in COMMUNITY_ROUTES
              if "members/" in p or "invites" in p or "release" in p}


def call(actor: Actor, method: str, path: str, body: object, **ids: object) -> int:
    response = actor.request(method, path.format(**ids), json=body)
    return response.status_code


@pytest.fixture
def two_communities(world: World) -> dict[str, object]:
    owner_a = world.admin("Owner A")
    a = world.community(owner_a, "Alpha")
    owner_b = world.admin("Owner B")
    b = world.community(owner_b, "Beta")
    member_b = world.join(owner_b, b, "member")
    invite_b = owner_b.post(f"/api/communities/{b}/invites", json={}).json()["id"]
    return {"a": a, "owner_a": owner_a, "b": b, "owner_b": owner_b, "member_b": member_b,
            "invite_b": invite_b}


def test_no_cross_community_access(two_communities: dict[str, object]) -> None:
    """The owner of community A gets 404 for everything in community B, and changes nothing."""
    owner_a = two_communities["owner_a"]
    member_b = two_communities["member_b"]
    assert isinstance(owner_a, Actor) and isinstance(member_b, Actor)
    for method, path, body in COMMUNITY_ROUTES:
        response = owner_a.request(method, path.format(
            slug=two_communities["b"], uid=member_b.user_id, iid=two_communities["invite_b"]),
            json=body)
        assert_error(response, 404, "community_not_found")
        # ... and the same answer for a community that does not exist at all
        missing = owner_a.request(method, path.format(slug="no-such", uid=1, iid=1), json=body)
        assert_error(missing, 404, "community_not_found")
    owner_b = two_communities["owner_b"]
    assert isinstance(owner_b, Actor)
    members = owner_b.get(f"/api/communities/{two_communities['b']}/members").json()["members"]
    assert {m["role"] for m in members} == {"owner", "member"}
    assert len(owner_b.get(f"/api/communities/{two_communities['b']}/invites")
               .json()["invites"]) == 1


@pytest.mark.parametrize("role", ["member", "host", "moderator"])
def test_non_owners_cannot_manage(world: World, role: str) -> None:
    """Members, hosts and moderators get 403 on owner-only routes, and can read the rest."""
    owner = world.admin()
    slug = world.community(owner)
    actor = world.join(owner, slug, role)
    target = world.join(owner, slug, "member", "Target")
    invite_id = owner.post(f"/api/communities/{slug}/invites", json={}).json()["id"]
    for method, path, body in COMMUNITY_ROUTES:
        status = call(actor, method, path, body, slug=slug, uid=target.user_id, iid=invite_id)
        if path in OWNER_ONLY:
            assert status == 403, (method, path)
        elif path.endswith("/audit"):
            assert status == (200 if role == "moderator" else 403), (method, path)
        else:
            assert status == 200, (method, path)


def test_members_do_not_see_emails(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    member = world.join(owner, slug)
    assert all("email" not in m for m in
               member.get(f"/api/communities/{slug}/members").json()["members"])
    assert all("email" in m for m in
               owner.get(f"/api/communities/{slug}/members").json()["members"])


def test_role_changes_and_removals_are_audited(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    member = world.join(owner, slug)
    assert owner.patch(f"/api/communities/{slug}/members/{member.user_id}",
                       json={"role": "moderator"}).status_code == 200
    assert member.get(f"/api/communities/{slug}/audit").status_code == 200
    assert_error(owner.patch(f"/api/communities/{slug}/members/{member.user_id}",
                             json={"role": "emperor"}), 422, "invalid_role")
    assert owner.delete(f"/api/communities/{slug}/members/{member.user_id}").status_code == 204
    assert_error(member.get(f"/api/communities/{slug}"), 404, "community_not_found")
    actions = [e["action"] for e in owner.get(f"/api/communities/{slug}/audit").json()["events"]]
    assert actions[:3] == ["member.removed", "member.role_changed", "member.joined"]


def test_last_owner_stays(world: World) -> None:
    """A community always keeps an owner; a second owner makes the first removable."""
    owner = world.admin()
    slug = world.community(owner)
    assert_error(owner.delete(f"/api/communities/{slug}/members/{owner.user_id}"), 409,
                 "last_owner")
    second = world.join(owner, slug, "owner", "Second Owner")
    assert second.delete(f"/api/communities/{slug}/members/{owner.user_id}").status_code == 204


def test_only_admins_create_communities(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    member = world.join(owner, slug)
    assert_error(member.post("/api/communities", json={"name": "Mine"}), 403, "admin_only")
    assert_error(owner.post("/api/communities", json={"name": "X", "slug": "Bad Slug!"}), 422,
                 "invalid_slug")
    owner.post("/api/communities", json={"name": "Same", "slug": "same"})
    assert_error(owner.post("/api/communities", json={"name": "Same", "slug": "same"}), 409,
                 "slug_taken")


def test_release_texts_are_versioned(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    first = owner.get(f"/api/communities/{slug}").json()["release"]
    assert first["version"] == 1
    body = "Version two of our release: you keep your rights, we may show your story."
    second = owner.post(f"/api/communities/{slug}/release", json={"body": body}).json()
    assert second["version"] == 2 and second["body"] == body and second["sha256"] != first["sha256"]
    assert_error(owner.post(f"/api/communities/{slug}/release", json={"body": "too short"}),
                 422, "invalid_release_text")


def test_audit_log_is_append_only(world: World) -> None:
    """The database itself refuses to edit or delete audit events."""
    owner = world.admin()
    slug = world.community(owner)
    cid = community_id(world.settings, slug)
    for statement in ("UPDATE audit_events SET action = 'x' WHERE community_id = :c",
                      "DELETE FROM audit_events WHERE community_id = :c"):
        async def tamper(session: AsyncSession, sql: str = statement) -> None:
            await session.execute(text(sql), {"c": cid})

        with pytest.raises(DBAPIError, match="append-only"):
            run_db(world.settings, tamper)
    assert owner.get(f"/api/communities/{slug}/audit").json()["events"]


def test_grants_table() -> None:
    """Owners can do everything; members only view and share; hosts host; moderators moderate."""
    assert GRANTS[Role.owner] == frozenset(Permission)
    assert allows("member", Permission.share_story) and not allows("member", Permission.moderate)
    assert allows("host", Permission.host_sessions) and not allows("host", Permission.moderate)
    assert allows("moderator", Permission.moderate)
    assert not allows("moderator", Permission.manage_members)
