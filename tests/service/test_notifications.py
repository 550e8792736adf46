"""What people are told, through a real SMTP server process and `kumpul worker`: review
decisions, sessions scheduled, starting soon and live, invites mailed from the admin page;
each in the reader's language and zone, text plus HTML, with one-click unsubscribe (RFC 8058)
that works without signing in; and each person's choice per kind."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient

from service.db.models import Notification
from service.domain import live
from service.settings import Settings
from tests.actors import Actor
from tests.conftest import World, jobs_using, make_settings, run_db
from tests.mail_support import burst, part, received, smtp_server
from tests.studio import Studio
from workers.notify import remind_soon


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    folder = tmp_path / "maildir"
    with smtp_server(folder) as port:
        yield port, folder


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str,
             smtp: tuple[int, Path]) -> Settings:
    return make_settings(tmp_path, KUMPUL_DATABASE_URL=database_url, KUMPUL_REDIS_URL=redis_url,
                         KUMPUL_MAIL_TRANSPORT="smtp", KUMPUL_SMTP_PORT=str(smtp[0]),
                         KUMPUL_SMTP_TLS="none", KUMPUL_PUBLIC_URL="https://kumpul.example",
                         KUMPUL_MAIL_FROM="Kumpul <noreply@kumpul.example>")


def mails_to(folder: Path, address: str | None, count: int) -> list[Message]:
    """All mails so far (at least `count` in all), those to `address` (all when None)."""
    found = received(folder, count)
    return [m for m in found if address is None or m["To"] == address]


def schedule(owner: Actor, slug: str, title: str, starts_at: datetime) -> str:
    made = owner.post(f"/api/communities/{slug}/live",
                      json={"title": title, "starts_at": starts_at.isoformat()})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def unsubscribe_path(mail: Message) -> str:
    header = mail["List-Unsubscribe"]
    assert header and header.startswith("<https://kumpul.example/unsubscribe/"), header
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return urlsplit(header.strip("<>")).path


def test_review_decisions_and_sessions_reach_people_in_their_words(
        studio: Studio, client: TestClient, settings: Settings,
        smtp: tuple[int, Path]) -> None:
    """Approved (in Indonesian, WITA), needs changes (reason and the moderator's note), a new
    session (everyone but the host), live now (the watch link): mails with both parts, the
    unsubscribe headers, and the same notices in each person's bell."""
    _, folder = smtp
    ana, budi = studio.members
    assert ana.patch("/api/me", json={"language": "id",
                                      "time_zone": "Asia/Makassar"}).status_code == 200
    approve = studio.moderator.post(studio.api(f"/review/{studio.clips[0]}/approve"))
    assert approve.status_code == 200, approve.text
    reject = studio.moderator.post(studio.api(f"/review/{studio.clips[1]}/reject"),
                                   json={"reason": "quality", "note": "Too dark <try> daylight"})
    assert reject.status_code == 200, reject.text
    starts = datetime(2030, 3, 9, 11, 0, tzinfo=UTC)  # 19.00 WITA
    session_id = schedule(studio.owner, studio.slug, "Trail talk; Q&A", starts)
    burst(settings)
    # 2 decisions + the session to 4 people (host left out)
    mails_to(folder, None, 5)
    approved = [m for m in mails_to(folder, ana.email, 5) if "disetujui" in m["Subject"]]
    assert len(approved) == 1
    assert approved[0].get_content_type() == "multipart/alternative"
    assert approved[0]["Subject"] == "Ceritamu disetujui"
    assert "/c/" in part(approved[0], "plain") and 'lang="id"' in part(approved[0], "html")
    unsubscribe_path(approved[0])
    (changes,) = [m for m in mails_to(folder, budi.email, 5) if "changes" in m["Subject"]]
    text, html = part(changes, "plain"), part(changes, "html")
    assert "The picture or sound is too poor to use." in text
    assert "Too dark <try> daylight" in text and "Too dark &lt;try&gt; daylight" in html
    scheduled = [m for m in mails_to(folder, None, 5) if "Trail talk" in m["Subject"]]
    assert sorted(str(m["To"]) for m in scheduled) == sorted(
        str(e) for e in (ana.email, budi.email, studio.moderator.email))
    ana_scheduled = next(m for m in scheduled if m["To"] == ana.email)
    assert ana_scheduled["Subject"].startswith("Sesi live baru di")
    assert "19.00 WITA" in part(ana_scheduled, "plain")
    budi_scheduled = next(m for m in scheduled if m["To"] == budi.email)
    assert "6:00\u202fPM WIB" in part(budi_scheduled, "plain")  # the community's zone

    # one click, no login: Budi stops mails about new sessions; the bell still tells him
    path = unsubscribe_path(budi_scheduled)
    with TestClient(client.app) as stranger:
        confirm = stranger.get(path)
        assert confirm.status_code == 200 and "<form" in confirm.text
        assert budi.get("/api/notifications").json()["unread"] == 2  # nothing changed by GET
        done = stranger.post(path, content="List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200 and 'id="unsubscribed"' in done.text
        assert stranger.post(path.replace("/unsubscribe/", "/unsubscribe/x")).status_code == 404
    account = budi.get("/account")
    assert re.search(r'name="session_scheduled">.*?value="in_app" selected', account.text,
                     re.S)
    schedule(studio.owner, studio.slug, "Second talk", starts + timedelta(days=7))

    # live now, with the watch link
    with jobs_using(settings) as ctx:
        ctx.db(lambda session: live.go_live(session, session_id))
    burst(settings)
    everything = mails_to(folder, None, 9)
    assert not [m for m in everything if m["To"] == budi.email and "Second talk" in m["Subject"]]
    live_now = [m for m in everything if "Trail talk" in m["Subject"] and (
        m["Subject"].startswith("Live now") or m["Subject"].startswith("Sedang live"))]
    assert len(live_now) == 3
    watch = f"https://kumpul.example/c/{studio.slug}/live/{session_id}"
    assert all(watch in part(m, "plain") and watch in part(m, "html") for m in live_now)
    bell = budi.get("/api/notifications").json()
    assert bell["unread"] == 4  # changes, scheduled, second (in the app only), live
    assert [n["kind"] for n in bell["notifications"]] == [
        "session_live", "session_scheduled", "session_scheduled", "story_changes"]
    assert bell["notifications"][0]["text"] == "Live now: Trail talk; Q&A"
    assert studio.owner.get("/api/notifications").json()["unread"] == 0  # the host


def test_starting_soon_is_told_once(world: World, client: TestClient, settings: Settings,
                                    smtp: tuple[int, Path]) -> None:
    """The every-minute sweep announces a session starting within the hour once, however
    often it runs; a session further away waits."""
    owner = world.admin("Olu Owner")
    slug = world.community(owner)
    member = world.join(owner, slug)
    soon = schedule(owner, slug, "Soon session", datetime.now(UTC) + timedelta(minutes=40))
    schedule(owner, slug, "Later session", datetime.now(UTC) + timedelta(hours=3))
    with jobs_using(settings):
        assert remind_soon() == 1
        assert remind_soon() == 0
    burst(settings)
    mails = mails_to(smtp[1], member.email, 3)
    assert [m["Subject"] for m in mails if m["Subject"].startswith("Starting")] == [
        "Starting in an hour: Soon session"]

    async def kinds(session: AsyncSession) -> list[str]:
        rows = await session.scalars(select(Notification.key).where(
            Notification.user_id == member.user_id).order_by(Notification.key))
        return list(rows)

    assert f"session_soon:{soon}" in run_db(settings, kinds)


def test_an_invite_mailed_from_the_admin_page(world: World, client: TestClient,
                                              settings: Settings, smtp: tuple[int, Path]) -> None:
    """The link, the community and the role, in the community's language; the address can
    unsubscribe from invites without an account, and then gets none."""
    owner = world.admin("Olu Owner")
    slug = world.community(owner)
    sent = owner.post(f"/c/{slug}/admin/invites", data={
        "role": "moderator", "max_uses": "1", "days": "7", "email": "Friend@Example.com",
        "csrf_token": owner.csrf})
    assert sent.status_code == 200, sent.text
    link = re.search(r'value="(https://kumpul.example/invite/[^"]+)"', sent.text)
    assert link
    burst(settings)
    (mail,) = mails_to(smtp[1], "friend@example.com", 1)
    text = part(mail, "plain")
    assert mail["Subject"].startswith("You're invited to Trail Runners")
    assert link.group(1) in text and "as a moderator" in text
    path = unsubscribe_path(mail)
    with TestClient(client.app) as stranger:
        assert stranger.post(path).status_code == 200
    again = owner.post(f"/c/{slug}/admin/invites", data={
        "role": "member", "email": "friend@example.com", "csrf_token": owner.csrf})
    assert again.status_code == 409 and "asked not to get invites" in again.text
