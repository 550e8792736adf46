"""First contact with the app on both databases."""

from __future__ import annotations

from tests.conftest import World


def test_owner_invites_member(world: World) -> None:
    """An admin creates a community and a member joins through an invite link."""
    owner = world.admin()
    slug = world.community(owner)
    member = world.join(owner, slug)
    members = owner.get(f"/api/communities/{slug}/members").json()["members"]
    assert sorted(m["role"] for m in members) == ["member", "owner"]
    assert member.get(f"/api/communities/{slug}").json()["role"] == "member"
