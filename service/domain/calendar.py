"""Live sessions as iCalendar (RFC 5545): one session's .ics, and each member's feed of their
communities' sessions behind a secret URL they can revoke.

Times carry the community's zone (TZID) with a VTIMEZONE built from the IANA rules for the
years shown; text is escaped (backslash, semicolon, comma, newline), lines are folded at 75
octets without splitting a UTF-8 character, and every line ends in CRLF.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service import i18n, security
from service.db.models import CalendarFeed, Community, LiveSession, Membership, User, utcnow
from service.domain.live_state import LiveState
from service.i18n import N_

SESSION_MINUTES = 60  # a session's assumed length (a live session has no set end)
REMINDER_MINUTES = 60
FEED_NAME = N_("Kumpul live sessions")


@dataclass(frozen=True)
class Event:
    live: LiveSession
    community: Community
    url: str


def escape(text: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11)."""
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def fold(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 3.1), continuation lines start with a
    space; a UTF-8 character is never split."""
    out: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y%m%dT%H%M%S")


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{rest:02d}"


def vtimezone(name: str, years: Iterable[int]) -> list[str]:
    """The zone's offsets over `years`: one STANDARD when it has no changes there, else one
    STANDARD or DAYLIGHT per change (found hour by hour, then to the minute)."""
    return list(_vtimezone(name, tuple(sorted(set(years)))))


@cache
def _vtimezone(name: str, span: tuple[int, ...]) -> tuple[str, ...]:
    zone = ZoneInfo(name)
    start = datetime(span[0], 1, 1, tzinfo=UTC)
    end = datetime(span[-1] + 1, 1, 1, tzinfo=UTC)
    changes: list[tuple[datetime, timedelta, timedelta, bool]] = []
    moment = start
    before = moment.astimezone(zone).utcoffset()
    while moment < end:
        after_moment = moment + timedelta(hours=1)
        after = after_moment.astimezone(zone).utcoffset()
        if after != before:
            exact = moment
            while (exact + timedelta(minutes=1)).astimezone(zone).utcoffset() == before:
                exact += timedelta(minutes=1)
            exact += timedelta(minutes=1)
            daylight = bool(exact.astimezone(zone).dst())
            changes.append((exact, before or timedelta(0), after or timedelta(0), daylight))
            before = after
        moment = after_moment
    lines = ["BEGIN:VTIMEZONE", f"TZID:{name}"]
    if not changes:
        offset = _offset(start.astimezone(zone).utcoffset())
        abbr = start.astimezone(zone).tzname() or name
        lines += ["BEGIN:STANDARD", "DTSTART:19700101T000000", f"TZOFFSETFROM:{offset}",
                  f"TZOFFSETTO:{offset}", f"TZNAME:{escape(abbr)}", "END:STANDARD"]
    for at, was, now, daylight in changes:
        part = "DAYLIGHT" if daylight else "STANDARD"
        local = (at + was).replace(tzinfo=None).strftime("%Y%m%dT%H%M%S")
        lines += [f"BEGIN:{part}", f"DTSTART:{local}", f"TZOFFSETFROM:{_offset(was)}",
                  f"TZOFFSETTO:{_offset(now)}",
                  f"TZNAME:{escape(at.astimezone(zone).tzname() or name)}", f"END:{part}"]
    return (*lines, "END:VTIMEZONE")


def document(events: Sequence[Event], speech: i18n.Speech, host: str, *,
             name: str | None = None) -> bytes:
    """A VCALENDAR of `events` (each with a reminder an hour before)."""
    now = utcnow()
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Kumpul//Live sessions//EN",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH"]
    if name:
        lines.append(f"X-WR-CALNAME:{escape(name)}")
    zones: dict[str, set[int]] = {}
    for event in events:
        zones.setdefault(event.community.time_zone, set()).update(
            {event.live.starts_at.year, now.year})
    for zone_name, years in sorted(zones.items()):
        lines += vtimezone(zone_name, years)
    reminder = speech.gettext(N_("Starts in an hour: %(title)s"))
    for event in events:
        live, community = event.live, event.community
        zone = ZoneInfo(community.time_zone)
        summary = speech.fill(speech.gettext(N_("%(title)s (live in %(community)s)")),
                              {"title": live.title, "community": community.name})
        lines += [
            "BEGIN:VEVENT",
            f"UID:live-{live.id}@{host}",
            f"DTSTAMP:{_stamp(now)}",
            f"DTSTART;TZID={community.time_zone}:{_local(live.starts_at, zone)}",
            f"DTEND;TZID={community.time_zone}:"
            f"{_local(live.starts_at + timedelta(minutes=SESSION_MINUTES), zone)}",
            f"SUMMARY:{escape(summary)}",
            f"DESCRIPTION:{escape((live.description + chr(10) + chr(10)).lstrip() + event.url)}",
            f"URL:{event.url}",
            f"STATUS:{'CONFIRMED'}",
            f"LAST-MODIFIED:{_stamp(live.updated_at)}",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            f"DESCRIPTION:{escape(speech.fill(reminder, {'title': live.title}))}",
            f"TRIGGER:-PT{REMINDER_MINUTES}M",
            "END:VALARM",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(fold(line) for line in lines) + "\r\n").encode()


# --- the member's feed ------------------------------------------------------------------

async def feed_url(session: AsyncSession, user: User, base_url: str, secret: str) -> str | None:
    """The person's feed URL, or None when they have none (or revoked it)."""
    found = await feed_of(session, user)
    if found is None:
        return None
    return f"{base_url}/calendar/{feed_token(secret, user.id, found.generation)}.ics"


def feed_token(secret: str, user_id: int, generation: int) -> str:
    mac = security.sign(secret, f"calendar:{user_id}:{generation}")[:40]
    return f"{user_id}-{generation}-{mac}"


async def feed_of(session: AsyncSession, user: User) -> CalendarFeed | None:
    found = await session.get(CalendarFeed, user.id)
    return found if found is not None and found.active else None


async def start_feed(session: AsyncSession, user: User) -> CalendarFeed:
    """A feed URL for the person: a new one (the old URL stops working)."""
    found = await session.get(CalendarFeed, user.id)
    if found is None:
        found = CalendarFeed(user_id=user.id, generation=1, active=True, created_at=utcnow())
        session.add(found)
    else:
        found.generation += 1
        found.active = True
    return found


async def stop_feed(session: AsyncSession, user: User) -> None:
    found = await session.get(CalendarFeed, user.id)
    if found is not None:
        found.active = False
        found.generation += 1


async def feed_user(session: AsyncSession, secret: str, token: str) -> User | None:
    """The person whose live feed this token opens, else None."""
    parts = token.split("-")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    user_id, generation = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(feed_token(secret, user_id, generation).encode(),
                               token.encode()):
        return None
    found = await session.get(CalendarFeed, user_id)
    if found is None or not found.active or found.generation != generation:
        return None
    return await session.get(User, user_id)


async def upcoming(session: AsyncSession, user: User,
                   days_back: int = 30) -> list[tuple[LiveSession, Community]]:
    """The sessions of the person's communities: scheduled or live, and those of the last
    `days_back` days."""
    since = utcnow() - timedelta(days=days_back)
    rows = await session.execute(
        select(LiveSession, Community).join(Community, Community.id == LiveSession.community_id)
        .join(Membership, Membership.community_id == Community.id)
        .where(Membership.user_id == user.id, LiveSession.starts_at >= since,
               LiveSession.state != LiveState.ended)
        .order_by(LiveSession.starts_at))
    return [(row[0], row[1]) for row in rows]
