"""People and their credentials: users, browser sessions, personal API tokens, first-owner setup."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service import security
from service.db.models import ApiToken, SetupToken, User, WebSession, utcnow
from service.domain.place import check_language, check_zone
from service.domain.text import one_line
from service.errors import Conflict, Gone, NotFound, Unauthorized, Unprocessable

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
TOKEN_PREFIX = "kmp_"  # noqa: S105 - a label, not a secret


def clean_email(raw: object) -> str:
    email = str(raw or "").strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise Unprocessable("That email address doesn't look right.", code="invalid_email",
                            hint="Use an address like name@example.com.")
    return email


def clean_name(raw: object, *, field: str = "display_name", limit: int = 80) -> str:
    name = one_line(raw)
    if not name or len(name) > limit or any(ord(c) < 32 for c in name):
        raise Unprocessable("%(field)s must be 1 to %(limit)s printable characters.", field=field,
                            limit=limit,
                            code=f"invalid_{field}")
    return name


def check_password(raw: object) -> str:
    password = str(raw or "")
    if not security.MIN_PASSWORD <= len(password) <= security.MAX_PASSWORD:
        raise Unprocessable(
            "Passwords need %(low)s to %(high)s characters.",
            low=security.MIN_PASSWORD, high=security.MAX_PASSWORD,
            code="weak_password", hint="A short sentence is easy to remember and hard to guess.")
    return password


async def create_user(session: AsyncSession, *, email: str, display_name: str, password: str,
                      is_admin: bool = False) -> User:
    """Add a user in the caller's transaction. Argon2 runs off the event loop."""
    email, display_name = clean_email(email), clean_name(display_name)
    password_hash = await anyio.to_thread.run_sync(security.hash_password, check_password(password))
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with that email already exists.", code="email_taken",
                       hint="Log in instead, then open the invite link again.")
    user = User(email=email, display_name=display_name, password_hash=password_hash,
                is_admin=is_admin)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # lost a race with another signup for the same email
        raise Conflict("An account with that email already exists.", code="email_taken") from None
    return user


async def sign_up(session: AsyncSession, fields: Mapping[str, object], hours: int, *,
                  is_admin: bool = False) -> tuple[User, SessionGrant]:
    """A new account from sign-up fields (email, display_name, password), signed in at once."""
    user = await create_user(session, email=str(fields.get("email") or ""),
                             display_name=str(fields.get("display_name") or ""),
                             password=str(fields.get("password") or ""), is_admin=is_admin)
    return user, await start_session(session, user, hours)


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    user = await session.scalar(select(User).where(User.email == str(email).strip().lower()))
    ok = await anyio.to_thread.run_sync(
        security.verify_password, user.password_hash if user else None, str(password)
    )
    return user if ok else None


# --- browser sessions -------------------------------------------------------------------

@dataclass(frozen=True)
class SessionGrant:
    token: str        # goes into the cookie; never stored
    csrf_token: str


async def start_session(session: AsyncSession, user: User, hours: int) -> SessionGrant:
    token = security.new_token()
    csrf = security.new_token()
    session.add(WebSession(id=security.token_hash(token), user_id=user.id, csrf_token=csrf,
                           expires_at=utcnow() + timedelta(hours=hours)))
    # Opportunistic clean-up of this user's expired sessions.
    await session.execute(delete(WebSession).where(WebSession.user_id == user.id,
                                                   WebSession.expires_at < utcnow()))
    return SessionGrant(token, csrf)


async def session_user(session: AsyncSession, token: str) -> tuple[User, WebSession]:
    row = await session.get(WebSession, security.token_hash(token))
    if row is None:
        raise Unauthorized("You are not logged in.", code="not_authenticated",
                           hint="Log in and try again.")
    if row.expires_at <= utcnow():
        raise Unauthorized("Your login has expired.", code="session_expired",
                           hint="Log in again.")
    user = await session.get(User, row.user_id)
    assert user is not None  # cascade deletes sessions with their user
    return user, row


async def end_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == security.token_hash(token)))


# --- personal API tokens ----------------------------------------------------------------

async def create_api_token(session: AsyncSession, user: User, name: object) -> tuple[str, ApiToken]:
    token = security.new_token(TOKEN_PREFIX)
    row = ApiToken(user_id=user.id, name=clean_name(name, field="name"),
                   token_hash=security.token_hash(token), prefix=token[:10])
    session.add(row)
    await session.flush()
    return token, row


async def api_tokens(session: AsyncSession, user: User) -> list[ApiToken]:
    rows = await session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                        ApiToken.revoked_at.is_(None))
                                 .order_by(ApiToken.id))
    return list(rows)


async def revoke_api_token(session: AsyncSession, user: User, token_id: int) -> None:
    result = await session.execute(
        update(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id,
                               ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("No such token.", code="token_not_found")


TOKEN_USE_STAMP = timedelta(minutes=5)  # a token's last use is written at most this often


async def token_user(session: AsyncSession, token: str) -> tuple[User, ApiToken]:
    """The token's user and its row (read only: its use is stamped by `stamp_token_use`,
    in a transaction of its own, when `token_use_due`)."""
    row = await session.scalar(select(ApiToken).where(
        ApiToken.token_hash == security.token_hash(token)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("That API token is not valid.", code="invalid_token",
                           hint="Create a new token on your account page.")
    user = await session.get(User, row.user_id)
    assert user is not None
    return user, row


def token_use_due(row: ApiToken, now: datetime) -> bool:
    return row.last_used_at is None or now - row.last_used_at > TOKEN_USE_STAMP


async def stamp_token_use(session: AsyncSession, token_id: int, now: datetime) -> None:
    """Record a use, unless one was recorded within `TOKEN_USE_STAMP` (by this request's
    twins on other nodes too: the condition is the database's, not what was read)."""
    await session.execute(update(ApiToken).where(
        ApiToken.id == token_id,
        or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOKEN_USE_STAMP),
    ).values(last_used_at=now))


# --- first-owner setup ------------------------------------------------------------------

async def issue_setup_token(session: AsyncSession, hours: int = 24) -> str | None:
    """A one-time link for the first owner, or None once any admin exists."""
    if await session.scalar(select(User.id).where(User.is_admin.is_(True)).limit(1)):
        return None
    await session.execute(delete(SetupToken).where(SetupToken.used_at.is_(None)))
    token = security.new_token()
    session.add(SetupToken(token_hash=security.token_hash(token),
                           expires_at=utcnow() + timedelta(hours=hours)))
    return token


async def find_setup_token(session: AsyncSession, token: str) -> SetupToken:
    """The set-up link's row, if it can still be used."""
    row = await session.scalar(select(SetupToken).where(
        SetupToken.token_hash == security.token_hash(token)))
    if row is None:
        raise NotFound("This set-up link is not valid.", code="setup_link_invalid",
                       hint="Run `kumpul serve` or `kumpul create-owner` for a new one.")
    if row.used_at is not None or row.expires_at <= utcnow():
        raise Gone("This set-up link was already used or has expired.",
                   code="setup_link_used", hint="Log in, or run `kumpul create-owner`.")
    return row


async def claim_setup_token(session: AsyncSession, token: str) -> SetupToken:
    """Check the link and mark it used in the caller's transaction (one use only)."""
    row = await find_setup_token(session, token)
    claimed = await session.execute(update(SetupToken).where(
        SetupToken.id == row.id, SetupToken.used_at.is_(None)).values(used_at=utcnow()))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Gone("This set-up link was already used.", code="setup_link_used")
    return row


_KEEP = object()


def change_place(user: User, *, language: object = _KEEP, time_zone: object = _KEEP) -> None:
    """A person's own language and time zone; None (or empty) follows the community."""
    if language is not _KEEP:
        user.language = check_language(language) if language not in (None, "") else None
    if time_zone is not _KEEP:
        user.time_zone = check_zone(time_zone) if time_zone not in (None, "") else None
