"""Communities, memberships and their roles, invite links and release texts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service import i18n, security
from service.db.models import Community, Invite, Membership, ReleaseText, User, utcnow
from service.domain import audit
from service.domain.accounts import clean_name
from service.domain.paging import Page
from service.domain.place import check_language, check_zone
from service.domain.roles import Permission, Role, allows
from service.domain.text import one_line
from service.errors import Conflict, Forbidden, Gone, NotFound, Unprocessable

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
MAX_INVITE_USES = 1000
MAX_RELEASE_CHARS = 20_000
# The release every new community starts with, in each language: written for members,
# not word for word (a community edits its own afterwards)
DEFAULT_RELEASES = {
    "id": ("Video ini saya buat sendiri, dan saya setuju {community} menayangkannya di "
           "komunitas dan dalam video sorotan, dengan nama tampilan saya. Saya bisa menariknya "
           "kapan saja; setelah itu video ini dihapus dari semua video sorotan."),
    "en": ("I made this video myself and I'm happy for {community} to show it in its community "
           "and in highlight reels, with my display name. I can withdraw it at any time, after "
           "which it is removed from every reel."),
}


@dataclass(frozen=True)
class Access:
    """A user's standing in one community, proven by `require`."""

    community: Community
    membership: Membership
    user: User

    @property
    def role(self) -> Role:
        return Role(self.membership.role)


async def require(session: AsyncSession, user: User, slug: str, permission: Permission) -> Access:
    """The one place roles are enforced.

    Outsiders get 404 for anything in a community (its existence is not revealed);
    members without the permission get 403.
    """
    row = (await session.execute(
        select(Community, Membership)
        .join(Membership, Membership.community_id == Community.id)
        .where(Community.slug == slug, Membership.user_id == user.id)
    )).first()
    if row is None:
        raise NotFound("No such community.", code="community_not_found")
    community, membership = row
    if not allows(membership.role, permission):
        raise Forbidden("Your role (%(role)s) can't do this here.", role=membership.role,
                        code="role_forbidden", hint="Ask an owner of the community.")
    return Access(community, membership, user)


def clean_slug(raw: object) -> str:
    slug = str(raw or "").strip().lower()
    if not SLUG.match(slug):
        raise Unprocessable("A community's short name needs 1-40 lowercase letters, digits "
                            "or hyphens, starting and ending with a letter or digit.",
                            code="invalid_slug")
    return slug


def slug_from_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-") or "community"


async def create_community(session: AsyncSession, *, name: object, slug: object | None,
                           owner: User, language: str = "id",
                           time_zone: str = i18n.DEFAULT_ZONE) -> Community:
    clean = clean_name(name, field="name")
    community = Community(name=clean, slug=clean_slug(slug or slug_from_name(clean)),
                          language=check_language(language), time_zone=check_zone(time_zone))
    session.add(community)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("The short name '%(slug)s' is taken.", code="slug_taken",
                       slug=community.slug,
                       hint="Choose another short name.") from None
    session.add(Membership(community_id=community.id, user_id=owner.id, role=Role.owner))
    for language, text in DEFAULT_RELEASES.items():
        await publish_release(session, community, text.format(community=clean), owner,
                              language=language)
    audit.record(session, action="community.created", subject_type="community",
                 subject_id=community.id, actor_id=owner.id, community_id=community.id,
                 data={"slug": community.slug})
    return community


async def communities_of(session: AsyncSession, user: User) -> list[tuple[Community, str]]:
    rows = await session.execute(
        select(Community, Membership.role).join(Membership, Membership.community_id == Community.id)
        .where(Membership.user_id == user.id).order_by(Community.name))
    return [(c, r) for c, r in rows.all()]


async def members(session: AsyncSession, community: Community,
                  page: Page | None = None) -> list[tuple[Membership, User]]:
    query = (select(Membership, User).join(User, User.id == Membership.user_id)
             .where(Membership.community_id == community.id).order_by(User.display_name, User.id))
    rows = await session.execute(page.window(query) if page else query)
    return [(m, u) for m, u in rows.all()]


async def _membership(session: AsyncSession, community: Community, user_id: int) -> Membership:
    membership = await session.scalar(select(Membership).where(
        Membership.community_id == community.id, Membership.user_id == user_id))
    if membership is None:
        raise NotFound("That person is not a member here.", code="member_not_found")
    return membership


async def members_user(session: AsyncSession, community: Community,
                       user_id: int) -> tuple[Membership, User]:
    """A member of the community and their account, or 404."""
    membership = await _membership(session, community, user_id)
    user = await session.get(User, user_id)
    assert user is not None
    return membership, user


async def _owner_count(session: AsyncSession, community: Community) -> int:
    return int(await session.scalar(select(func.count(Membership.id)).where(
        Membership.community_id == community.id, Membership.role == Role.owner)) or 0)


async def change_role(session: AsyncSession, access: Access, user_id: int,
                      role: object) -> Membership:
    try:
        new_role = Role(str(role))
    except ValueError:
        raise Unprocessable("role must be one of %(choices)s.", code="invalid_role",
                            choices=", ".join(Role)) from None
    membership = await _membership(session, access.community, user_id)
    if membership.role == Role.owner and new_role != Role.owner \
            and await _owner_count(session, access.community) == 1:
        raise Conflict("A community needs at least one owner.", code="last_owner",
                       hint="Make someone else an owner first.")
    old = membership.role
    membership.role = new_role
    audit.record(session, action="member.role_changed", subject_type="user", subject_id=user_id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"from": old, "to": new_role})
    return membership


async def remove_member(session: AsyncSession, access: Access, user_id: int) -> None:
    membership = await _membership(session, access.community, user_id)
    if membership.role == Role.owner and await _owner_count(session, access.community) == 1:
        raise Conflict("A community needs at least one owner.", code="last_owner",
                       hint="Make someone else an owner first.")
    await session.delete(membership)
    audit.record(session, action="member.removed", subject_type="user", subject_id=user_id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"role": membership.role})


# --- invites ----------------------------------------------------------------------------

async def create_invite(session: AsyncSession, access: Access, *, role: object = "member",
                        max_uses: object = 1, days: object = 14,
                        note: object = "") -> tuple[str, Invite]:
    try:
        invite_role = Role(str(role))
        uses, lifetime = int(str(max_uses)), int(str(days))
    except ValueError:
        raise Unprocessable("role must be a role name; max_uses and days whole numbers.",
                            code="invalid_invite") from None
    if not 1 <= uses <= MAX_INVITE_USES or not 1 <= lifetime <= 365:
        raise Unprocessable("max_uses must be 1-%(limit)s and days 1-365.", limit=MAX_INVITE_USES,
                            code="invalid_invite")
    note_text = one_line(note, 120)
    token = security.new_token()
    invite = Invite(community_id=access.community.id, token_hash=security.token_hash(token),
                    role=invite_role, max_uses=uses, uses=0, note=note_text,
                    created_by=access.user.id, expires_at=utcnow() + timedelta(days=lifetime))
    session.add(invite)
    await session.flush()
    audit.record(session, action="invite.created", subject_type="invite", subject_id=invite.id,
                 actor_id=access.user.id, community_id=access.community.id,
                 data={"role": invite_role, "max_uses": uses, "days": lifetime})
    return token, invite


async def open_invites(session: AsyncSession, community: Community) -> list[Invite]:
    rows = await session.scalars(select(Invite).where(
        Invite.community_id == community.id, Invite.revoked_at.is_(None),
        Invite.expires_at > utcnow(), Invite.uses < Invite.max_uses).order_by(Invite.id.desc()))
    return list(rows)


async def revoke_invite(session: AsyncSession, access: Access, invite_id: int) -> None:
    result = await session.execute(update(Invite).where(
        Invite.id == invite_id, Invite.community_id == access.community.id,
        Invite.revoked_at.is_(None)).values(revoked_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("No such open invite.", code="invite_not_found")
    audit.record(session, action="invite.revoked", subject_type="invite", subject_id=invite_id,
                 actor_id=access.user.id, community_id=access.community.id)


async def find_invite(session: AsyncSession, token: str) -> tuple[Invite, Community]:
    """The invite behind a link, if it can still be used."""
    row = (await session.execute(select(Invite, Community).join(
        Community, Community.id == Invite.community_id).where(
        Invite.token_hash == security.token_hash(token)))).first()
    if row is None:
        raise NotFound("This invite link is not valid.", code="invite_invalid",
                       hint="Check that you copied the whole link, or ask for a new one.")
    invite, community = row
    if invite.revoked_at is not None:
        raise Gone("This invite link was withdrawn.", code="invite_revoked",
                   hint="Ask the person who invited you for a new link.")
    if invite.expires_at <= utcnow():
        raise Gone("This invite link has expired.", code="invite_expired",
                   hint="Ask the person who invited you for a new link.")
    if invite.uses >= invite.max_uses:
        raise Gone("This invite link has been used up.", code="invite_used_up",
                   hint="Ask the person who invited you for a new link.")
    return invite, community


async def accept_invite(session: AsyncSession, token: str,
                        user: User) -> tuple[Community, Membership]:
    """Join through an invite: one use is spent atomically, in the caller's transaction."""
    invite, community = await find_invite(session, token)
    existing = await session.scalar(select(Membership).where(
        Membership.community_id == community.id, Membership.user_id == user.id))
    if existing is not None:
        return community, existing  # already in: the link keeps its uses
    spent = await session.execute(update(Invite).where(
        Invite.id == invite.id, Invite.uses < Invite.max_uses, Invite.revoked_at.is_(None))
        .values(uses=Invite.uses + 1))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise Gone("This invite link has been used up.", code="invite_used_up")
    membership = Membership(community_id=community.id, user_id=user.id, role=invite.role)
    session.add(membership)
    audit.record(session, action="member.joined", subject_type="user", subject_id=user.id,
                 actor_id=user.id, community_id=community.id,
                 data={"invite_id": invite.id, "role": invite.role})
    return community, membership


# --- release texts ----------------------------------------------------------------------

async def current_releases(session: AsyncSession, community: Community) -> list[ReleaseText]:
    """The latest version in each language, the community's own language first."""
    rows = await session.scalars(select(ReleaseText).where(
        ReleaseText.community_id == community.id).order_by(ReleaseText.version.desc()))
    latest: dict[str, ReleaseText] = {}
    for release in rows:
        latest.setdefault(release.language, release)
    return sorted(latest.values(), key=lambda r: (r.language != community.language,
                                                  i18n.LANGUAGES.index(r.language)
                                                  if r.language in i18n.LANGUAGES else 99))


async def current_release(session: AsyncSession, community: Community,
                          language: str | None = None) -> ReleaseText:
    """The latest release text in `language`, else in the community's language, else any."""
    releases = await current_releases(session, community)
    assert releases  # every community is created with version 1 in each language
    for release in releases:
        if release.language == language:
            return release
    return releases[0]


async def change_settings(session: AsyncSession, access: Access, *, language: object = None,
                          time_zone: object = None) -> Community:
    """The community's language and time zone (owners); each is kept when not given."""
    community = access.community
    if language is not None:
        community.language = check_language(language)
    if time_zone is not None:
        community.time_zone = check_zone(time_zone)
    audit.record(session, action="community.settings", subject_type="community",
                 subject_id=community.id, actor_id=access.user.id, community_id=community.id,
                 data={"language": community.language, "time_zone": community.time_zone})
    return community


async def publish_release(session: AsyncSession, community: Community, body: object,
                          author: User, language: object = None) -> ReleaseText:
    """Add a new version of the release text in one language (the community's when not
    given); old versions stay as they were agreed to."""
    lang = check_language(language or community.language)
    text = str(body or "").strip()
    if not 20 <= len(text) <= MAX_RELEASE_CHARS:
        raise Unprocessable("A release text needs 20 to %(limit)s characters.",
                            limit=MAX_RELEASE_CHARS,
                            code="invalid_release_text")
    latest = await session.scalar(select(func.max(ReleaseText.version)).where(
        ReleaseText.community_id == community.id, ReleaseText.language == lang))
    release = ReleaseText(community_id=community.id, language=lang,
                          version=(latest or 0) + 1, body=text,
                          sha256=hashlib.sha256(text.encode()).hexdigest(), created_by=author.id)
    session.add(release)
    await session.flush()
    audit.record(session, action="release.published", subject_type="release",
                 subject_id=release.id, actor_id=author.id, community_id=community.id,
                 data={"version": release.version, "language": lang,
                       "sha256": release.sha256})
    return release
