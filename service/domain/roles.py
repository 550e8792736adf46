"""Community roles and what each may do. The one table of who-can-what."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    member = "member"
    host = "host"
    moderator = "moderator"
    owner = "owner"


class Permission(StrEnum):
    view = "view"                      # see the community, its members and sessions
    share_story = "share_story"        # upload or record a story
    host_sessions = "host_sessions"    # schedule and run live sessions
    manage_prompts = "manage_prompts"  # create story prompts
    moderate = "moderate"              # review clips, compose and publish reels
    view_audit = "view_audit"          # read the audit log
    manage_members = "manage_members"  # roles, removals, invites, release text
    manage_webhooks = "manage_webhooks"  # integrators' endpoints, secrets, delivery log
    view_numbers = "view_numbers"      # the member lifecycle in numbers


_MEMBER = {Permission.view, Permission.share_story}
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.member: frozenset(_MEMBER),
    Role.host: frozenset(_MEMBER | {Permission.host_sessions, Permission.manage_prompts}),
    Role.moderator: frozenset(
        _MEMBER | {Permission.manage_prompts, Permission.moderate, Permission.view_audit}
    ),
    Role.owner: frozenset(Permission),
}


def allows(role: Role | str, permission: Permission) -> bool:
    return permission in GRANTS[Role(role)]
