"""Password resets: a single-use, short-lived link, asked for by mail (the person) or made by
an owner or site admin for a member. Using it sets the password and ends every other login.

Asking by mail never says whether an account exists; both ways are audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service import i18n, security
from service.db.models import ApiToken, PasswordReset, User, WebSession, utcnow
from service.domain import audit, notices, outbox
from service.domain.accounts import check_password, clean_email
from service.domain.communities import Access, members_user
from service.domain.roles import Role
from service.errors import Forbidden, Gone, NotFound


@dataclass(frozen=True)
class ResetLink:
    token: str
    expires_at: datetime


async def _issue(session: AsyncSession, user: User, minutes: int,
                 by: int | None) -> ResetLink:
    """A new link; the user's older unused links stop working."""
    await session.execute(update(PasswordReset).where(
        PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow()))
    token = security.new_token()
    expires = utcnow() + timedelta(minutes=minutes)
    session.add(PasswordReset(id=security.token_hash(token), user_id=user.id, created_by=by,
                              expires_at=expires))
    return ResetLink(token, expires)


async def request_by_mail(session: AsyncSession, email: object, *, minutes: int,
                          base_url: str, transport: str) -> None:
    """Mail a reset link if the address has an account; say nothing either way."""
    address = clean_email(email)
    user = await session.scalar(select(User).where(User.email == address))
    if user is None:
        return
    link = await _issue(session, user, minutes, None)
    speech = i18n.current()
    if user.language:  # the person's own language; else the one they asked in
        speech = i18n.Speech.of(user.language, speech.zone_name)
    await outbox.send(session, transport, notices.compose(
        "password_reset", speech, {"name": user.display_name, "valid_seconds": minutes * 60},
        to=user.email, link=f"{base_url}/reset/{link.token}", footer=None),
        kind="password_reset", user_id=user.id)
    audit.record(session, action="password.reset_requested", subject_type="user",
                 subject_id=str(user.id), actor_id=None, community_id=None,
                 data={"by": "mail"})


async def issue_for_member(session: AsyncSession, access: Access, user_id: int, *,
                           minutes: int) -> ResetLink:
    """An owner makes a reset link for a member of their community (to hand over in person
    or by chat, e.g. while mail is not set up). Owners and site admins are reset only by a
    site admin."""
    membership, user = await members_user(session, access.community, user_id)
    if (user.is_admin or membership.role == Role.owner) and not access.user.is_admin:
        raise Forbidden("Only a site admin can reset an owner's or admin's password.",
                        code="reset_not_allowed")
    link = await _issue(session, user, minutes, access.user.id)
    audit.record(session, action="password.reset_link_made", subject_type="user",
                 subject_id=str(user.id), actor_id=access.user.id,
                 community_id=access.community.id, data={})
    return link


async def find(session: AsyncSession, token: str) -> PasswordReset:
    row = await session.get(PasswordReset, security.token_hash(token))
    if row is None:
        raise NotFound("This reset link is not valid.", code="reset_link_invalid",
                       hint="Ask for a new link.")
    if row.used_at is not None or row.expires_at <= utcnow():
        raise Gone("This reset link was used already or has expired.", code="reset_link_used",
                   hint="Ask for a new link.")
    return row


async def use(session: AsyncSession, token: str, password: object) -> User:
    """Set the new password (once per link) and end every login of the account: browser
    sessions and personal tokens (one made by whoever knew the old password goes too)."""
    row = await find(session, token)
    new = check_password(password)
    claimed = await session.execute(update(PasswordReset).where(
        PasswordReset.id == row.id, PasswordReset.used_at.is_(None)).values(used_at=utcnow()))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Gone("This reset link was used already.", code="reset_link_used")
    user = await session.get(User, row.user_id)
    assert user is not None
    user.password_hash = await anyio.to_thread.run_sync(security.hash_password, new)
    await session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    await session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    audit.record(session, action="password.reset", subject_type="user",
                 subject_id=str(user.id), actor_id=user.id, community_id=None,
                 data={"link_by": row.created_by})
    return user
