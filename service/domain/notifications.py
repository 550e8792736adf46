"""Telling people: announcements, their fan-out, each person's choices, the bell.

A change that people should hear of records an `Announcement` (once per happening: its key)
and queues `workers.notify.announce`; that job tells a small audience at once and splits a
large one into chunks of `jobs.NOTIFY_CHUNK` people (`notify_chunk`), each told with bulk
inserts: the notices (the bell, published live to open pages) and, for people who chose
email, their mails in the outbox (sent in chunks by `workers.mail.send_mails`). A retried
chunk tells nobody twice: a notice is unique per (person, key).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service import effects, i18n
from service.db.models import (
    Announcement,
    Clip,
    Community,
    Invite,
    LiveMoment,
    LiveSession,
    MailOptOut,
    Membership,
    Notification,
    NotificationChoice,
    Reel,
    User,
    utcnow,
)
from service.domain import audit, notices, outbox
from service.domain.accounts import clean_email
from service.domain.communities import Access
from service.domain.composition import Composition
from service.domain.live_state import LiveState
from service.domain.paging import Page
from service.errors import Conflict, Unprocessable
from service.events import notice_channel
from service.settings import Settings

SOON_SECONDS = 3600  # "starts in an hour"


async def announce(session: AsyncSession, *, kind: str, key: str, community_id: int,
                   params: dict[str, Any], link: str, recipients: Iterable[int] | None = None,
                   exclude_id: int | None = None) -> bool:
    """Tell people of a happening once this transaction commits: `recipients`, or every
    member of the community but `exclude_id`. A key already announced is not told again."""
    if kind not in notices.KINDS:
        raise ValueError(f"no notice kind {kind!r}")
    if await session.get(Announcement, key) is not None:
        return False
    session.add(Announcement(key=key, kind=kind, community_id=community_id, params=params,
                             link=link, exclude_id=exclude_id, created_at=utcnow(),
                             recipients=sorted(set(recipients)) if recipients is not None
                             else None))
    effects.queue(session, "announce", key)
    return True


async def audience(session: AsyncSession, found: Announcement) -> list[int]:
    if found.recipients is not None:
        return [uid for uid in found.recipients if uid != found.exclude_id]
    query = select(Membership.user_id).where(Membership.community_id == found.community_id)
    if found.exclude_id is not None:
        query = query.where(Membership.user_id != found.exclude_id)
    return list(await session.scalars(query.order_by(Membership.user_id)))


def mail_links(settings: Settings, who: str, kind: str) -> notices.Footer:
    token = notices.unsubscribe_token(settings.secret_key, who, kind)
    return notices.Footer(f"{settings.public_url}/account#notifications",
                          f"{settings.public_url}/unsubscribe/{token}")


async def tell(session: AsyncSession, found: Announcement, user_ids: Sequence[int],
               settings: Settings) -> int:
    """Record the notices and mails of these people (those not yet told); how many."""
    ids = list(user_ids)
    if not ids:
        return 0
    already = set(await session.scalars(select(Notification.user_id).where(
        Notification.key == found.key, Notification.user_id.in_(ids))))
    todo = [uid for uid in ids if uid not in already]
    if not todo:
        return 0
    community = await session.get(Community, found.community_id)
    assert community is not None
    chosen = {row[0]: row[1] for row in await session.execute(select(
        NotificationChoice.user_id, NotificationChoice.channel).where(
        NotificationChoice.kind == found.kind, NotificationChoice.user_id.in_(todo)))}
    people = await session.scalars(select(User).where(User.id.in_(todo)).order_by(User.id))
    speeches: dict[tuple[str, str], i18n.Speech] = {}
    shown: dict[tuple[str, str], dict[str, str]] = {}  # the values, once per place
    notes: list[dict[str, Any]] = []
    mails: list[dict[str, Any]] = []
    link = settings.public_url + found.link
    now = utcnow()
    for user in people:
        channel = chosen.get(user.id, "email")
        if channel == "off":
            continue
        notes.append({"user_id": user.id, "community_id": found.community_id,
                      "kind": found.kind, "key": found.key, "params": found.params,
                      "link": found.link, "created_at": now})
        if channel != "email":
            continue
        place = (user.language or community.language, user.time_zone or community.time_zone)
        if place not in speeches:
            speeches[place] = i18n.Speech.of(*place)
            shown[place] = notices.values(speeches[place], found.params)
        mail = notices.compose(found.kind, speeches[place], found.params, to=user.email,
                               link=link, shown=shown[place],
                               footer=mail_links(settings, f"u:{user.id}", found.kind))
        mails.append(outbox.values_of(mail, settings.mail_transport, kind=found.kind,
                                      user_id=user.id))
    if not notes:
        return 0
    # bulk inserts (one statement each, not a unit of work of thousands of objects)
    note_ids = list(await session.scalars(insert(Notification).returning(
        Notification.id, sort_by_parameter_order=True), notes))
    await outbox.send_many(session, mails)
    told = [note["user_id"] for note in notes]
    counts = {row[0]: row[1] for row in await session.execute(
        select(Notification.user_id, func.count()).where(
            Notification.user_id.in_(told), Notification.read_at.is_(None))
        .group_by(Notification.user_id))}
    for note_id, note in zip(note_ids, notes, strict=True):
        effects.publish(session, notice_channel(note["user_id"]), {
            "id": note_id, "kind": found.kind, "params": found.params, "link": found.link,
            "unread": counts.get(note["user_id"], 0)})
    return len(notes)


async def remind_soon(session: AsyncSession) -> int:
    """Announce "starts in an hour" for scheduled sessions starting within the hour."""
    now = utcnow()
    due = await session.scalars(select(LiveSession).where(
        LiveSession.state == LiveState.scheduled, LiveSession.starts_at > now,
        LiveSession.starts_at <= now + timedelta(seconds=SOON_SECONDS)))
    made = 0
    for live in due:
        community = await session.get(Community, live.community_id)
        if community is None:
            continue
        made += await announce(session, kind="session_soon", key=f"session_soon:{live.id}",
                               community_id=live.community_id,
                               params=await session_params(session, live, community),
                               link=f"/c/{community.slug}/live/{live.id}")
    return made


async def session_params(session: AsyncSession, live: LiveSession,
                         community: Community) -> dict[str, Any]:
    host = await session.get(User, live.host_id)
    return {"community": community.name, "title": live.title,
            "host": host.display_name if host else "",
            "starts_at": live.starts_at.isoformat()}


# --- the happenings people hear of ------------------------------------------------------

async def session_changed(session: AsyncSession, live: LiveSession, kind: str) -> None:
    """A session was scheduled or went live: every member but the host hears of it."""
    community = await session.get(Community, live.community_id)
    if community is None:
        return
    await announce(session, kind=kind, key=f"{kind}:{live.id}", community_id=community.id,
                   params=await session_params(session, live, community),
                   link=f"/c/{community.slug}/live/{live.id}", exclude_id=live.host_id)


async def story_decided(session: AsyncSession, clip: Clip, kind: str, *,
                        reason: str | None = None, note: str | None = None) -> None:
    """A moderator approved a story or asked for changes: its member hears of it."""
    community = await session.get(Community, clip.community_id)
    if community is None or clip.source != "upload":
        return
    stamp = int((clip.reviewed_at or utcnow()).timestamp())
    await announce(session, kind=kind, key=f"{kind}:{clip.id}:{stamp}",
                   community_id=community.id, recipients=[clip.member_id],
                   params={"community": community.name, "title": clip.title or clip.filename,
                           "reason": reason, "note": note},
                   link=f"/c/{community.slug}/stories")


async def reel_published(session: AsyncSession, reel: Reel) -> None:
    """A reel went public: each member whose story is in it hears of it, and each host whose
    session's highlight is in it."""
    community = await session.get(Community, reel.community_id)
    if community is None:
        return
    for item in Composition.from_json(reel.composition).items:
        clip = await session.get(Clip, item.clip_id)
        if clip is None:
            continue
        params: dict[str, Any] = {"community": community.name, "reel": reel.title,
                                  "title": clip.title or clip.filename}
        kind = "story_in_reel"
        if clip.source == "live":
            kind = "highlight_published"
            live = await session.scalar(select(LiveSession).join(
                LiveMoment, LiveMoment.session_id == LiveSession.id).where(
                LiveMoment.clip_id == clip.id))
            params["title"] = live.title if live else params["title"]
        await announce(session, kind=kind, key=f"{kind}:{reel.id}:{clip.id}",
                       community_id=community.id, recipients=[clip.member_id], params=params,
                       link=f"/r/{reel.slug}")


async def mail_invite(session: AsyncSession, access: Access, invite: Invite, email: object,
                      url: str, settings: Settings) -> None:
    """Mail an invite link (the community, the role, until when) in the community's language;
    an address that unsubscribed from invites is refused."""
    address = clean_email(email)
    if await opted_out(session, address, "invite"):
        raise Conflict("%(email)s asked not to get invites by mail.", code="invite_opted_out",
                       hint="Hand the link over another way.", email=address)
    community = access.community
    speech = i18n.Speech.of(community.language, community.time_zone)
    mail = notices.compose("invite", speech, {
        "community": community.name, "inviter": access.user.display_name, "role": invite.role,
        "expires_at": invite.expires_at.isoformat()}, to=address, link=url,
        footer=mail_links(settings, f"e:{address}", "invite"))
    await outbox.send(session, settings.mail_transport, mail, kind="invite")
    audit.record(session, action="invite.mailed", subject_type="invite",
                 subject_id=str(invite.id), actor_id=access.user.id,
                 community_id=community.id, data={"email": address})


# --- each person's choices --------------------------------------------------------------

async def choices(session: AsyncSession, user: User) -> dict[str, str]:
    """The person's channel for each kind they may choose (email when never chosen)."""
    result = await session.execute(select(NotificationChoice.kind, NotificationChoice.channel)
                                   .where(NotificationChoice.user_id == user.id))
    rows = {row[0]: row[1] for row in result}
    return {kind.name: rows.get(kind.name, "email") for kind in notices.CHOOSABLE}


async def choose(session: AsyncSession, user_id: int, kind: str, channel: object) -> None:
    if kind not in {k.name for k in notices.CHOOSABLE} or channel not in notices.CHANNELS:
        raise Unprocessable("Choose email, in_app or off for a kind of notice.",
                            code="invalid_choice")
    row = await session.scalar(select(NotificationChoice).where(
        NotificationChoice.user_id == user_id, NotificationChoice.kind == kind))
    if row is None:
        session.add(NotificationChoice(user_id=user_id, kind=kind, channel=str(channel)))
    else:
        row.channel = str(channel)


async def unsubscribe(session: AsyncSession, who: str, kind: str) -> None:
    """One-click unsubscribe: a person's kind goes from email to in-app only; an address
    without an account gets no more mails of the kind."""
    scheme, _, value = who.partition(":")
    if scheme == "u" and value.isdigit():
        user_id = int(value)
        if await session.get(User, user_id) is None:
            return
        chosen = await session.scalar(select(NotificationChoice.channel).where(
            NotificationChoice.user_id == user_id, NotificationChoice.kind == kind))
        if chosen != "off":
            await choose(session, user_id, kind, "in_app")
    elif scheme == "e" and value:
        exists = await session.scalar(select(MailOptOut.id).where(
            MailOptOut.email == value, MailOptOut.kind == kind))
        if exists is None:
            session.add(MailOptOut(email=value, kind=kind))


async def opted_out(session: AsyncSession, email: str, kind: str) -> bool:
    return await session.scalar(select(MailOptOut.id).where(
        MailOptOut.email == email, MailOptOut.kind == kind)) is not None


# --- the bell ---------------------------------------------------------------------------

async def unread(session: AsyncSession, user_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0)


async def recent(session: AsyncSession, user_id: int, page: Page) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user_id) \
        .order_by(Notification.id.desc())
    return list(await session.scalars(page.window(query)))


async def mark_read(session: AsyncSession, user_id: int, ids: Iterable[int] | None) -> int:
    """Mark the person's notices `ids` (None: all) read; how many unread remain."""
    query = update(Notification).where(Notification.user_id == user_id,
                                       Notification.read_at.is_(None))
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    await session.execute(query.values(read_at=utcnow()))
    left = await unread(session, user_id)
    effects.publish(session, notice_channel(user_id), {"unread": left})
    return left


def shown(note: Notification, speech: i18n.Speech) -> dict[str, Any]:
    """A notice as the reader's pages and the API show it."""
    return {"id": note.id, "kind": note.kind, "text": notices.headline(speech, note.kind,
                                                                       note.params),
            "link": note.link, "created_at": note.created_at.isoformat(),
            "read": note.read_at is not None}
