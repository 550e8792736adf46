"""Fan-out jobs run as a worker runs them: a published reel tells each member whose story is
in it and the host whose session's moment is in it (once, however often it is published);
a large audience is split into chunk jobs that tell nobody twice when retried; each person's
choice (email, in-app, off) decides what is recorded."""

from __future__ import annotations

import uuid

from redis import Redis
from rq import Queue
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service import jobs
from service.db.models import (
    Announcement,
    Clip,
    Community,
    LiveMoment,
    LiveSession,
    MailOutbox,
    Membership,
    Notification,
    Reel,
    User,
    utcnow,
)
from service.domain import notifications
from service.settings import Settings
from tests.conftest import run_db
from tests.studio import Studio
from workers import notify


def queued(settings: Settings, name: str) -> list[tuple[str, tuple[object, ...]]]:
    """The jobs of `name` waiting on the default queue (id, args)."""
    queue = Queue("default", connection=Redis.from_url(settings.redis_url))
    return [(str(job.id), tuple(job.args)) for job in queue.get_jobs()
            if job.func_name == f"workers.notify.{name}"]


def run_announcements(settings: Settings) -> None:
    for _, args in queued(settings, "announce"):
        notify.announce(str(args[0]))


def test_a_published_reel_tells_its_members_and_the_host(studio: Studio,
                                                        settings: Settings) -> None:
    ana = studio.members[0]
    for clip_id in studio.clips:
        assert studio.moderator.post(studio.api(f"/review/{clip_id}/approve")).status_code == 200
    host_id = int(studio.owner.user_id or 0)

    async def as_live_moment(session: AsyncSession) -> None:
        """Budi's clip stands in for a moment cut from the owner's session (setup)."""
        clip = await session.get(Clip, studio.clips[1])
        assert clip is not None
        live = LiveSession(id=uuid.uuid4().hex, community_id=clip.community_id,
                           host_id=host_id, title="Sunday ride", starts_at=utcnow(),
                           state="ended", publish_token_hash="x" * 64)
        session.add(live)
        await session.flush()
        clip.source, clip.member_id = "live", host_id
        session.add(LiveMoment(session_id=live.id, start_ms=0, end_ms=3000, score=1.0,
                               why="", state="accepted", clip_id=clip.id))

    run_db(settings, as_live_moment)
    made = studio.moderator.post(studio.api("/reels"), json={"title": "Best of May"})
    assert made.status_code == 201, made.text
    reel_id = made.json()["id"]
    edited = studio.moderator.patch(studio.api(f"/reels/{reel_id}"), json={
        "items": [{"clip_id": c} for c in studio.clips]})
    assert edited.status_code == 200, edited.text

    async def rendered(session: AsyncSession) -> None:  # setup: the render's outcome
        await session.execute(update(Reel).where(Reel.id == reel_id).values(
            state="rendered", rendered_version=1, version=1))

    run_db(settings, rendered)
    for _ in range(2):
        published = studio.moderator.post(studio.api(f"/reels/{reel_id}/publish"))
        assert published.status_code == 200, published.text
        run_announcements(settings)
        if _ == 0:
            assert studio.moderator.post(
                studio.api(f"/reels/{reel_id}/unpublish")).status_code == 200
    ana_bell = ana.get("/api/notifications").json()["notifications"]
    assert [n["kind"] for n in ana_bell] == ["story_in_reel", "story_approved"]
    assert ana_bell[0]["text"] == "Your story is in a reel"
    assert ana_bell[0]["link"].startswith("/r/")
    host_bell = studio.owner.get("/api/notifications").json()["notifications"]
    assert [n["kind"] for n in host_bell] == ["highlight_published"]
    # marking read: one's own by id (someone else's id changes nothing), then all
    assert studio.owner.post("/api/notifications/read",
                             json={"ids": [ana_bell[0]["id"]]}).json() == {"unread": 1}
    assert ana.post("/api/notifications/read",
                    json={"ids": [ana_bell[0]["id"]]}).json() == {"unread": 1}
    assert ana.post("/api/notifications/read", json={"ids": ["x"]}).status_code == 400
    assert ana.post("/api/notifications/read", json={}).json() == {"unread": 0}
    listed = ana.get("/api/notifications?limit=1").json()
    assert listed["next_offset"] == 1 and listed["notifications"][0]["read"] is True

    async def mails(session: AsyncSession) -> list[tuple[str, str]]:
        rows = await session.execute(select(MailOutbox.kind, MailOutbox.body).where(
            MailOutbox.kind.in_(["story_in_reel", "highlight_published"])))
        return [(str(row[0]), str(row[1])) for row in rows]

    found = run_db(settings, mails)
    assert sorted(kind for kind, _ in found) == ["highlight_published", "story_in_reel"]
    highlight = next(body for kind, body in found if kind == "highlight_published")
    assert "Sunday ride" in highlight and "Best of May" in highlight


def test_a_large_audience_goes_in_chunks_told_once(studio: Studio, settings: Settings) -> None:
    """1,100 members: the announce job queues three chunk jobs instead of telling them; a
    chunk run twice (a retry) tells nobody twice; people who chose 'off' get nothing and
    'in_app' no mail."""

    async def crowd(session: AsyncSession) -> tuple[int, list[int]]:
        community = await session.scalar(select(Community).where(Community.slug == studio.slug))
        assert community is not None
        ids = []
        for n in range(1100):
            user = User(email=f"crowd{n}@example.com", display_name=f"Crowd {n}",
                        password_hash="x", is_admin=False)
            session.add(user)
            ids.append(user)
        await session.flush()
        session.add_all([Membership(community_id=community.id, user_id=u.id, role="member")
                         for u in ids])
        await notifications.choose(session, ids[0].id, "session_live", "off")
        await notifications.choose(session, ids[1].id, "session_live", "in_app")
        session.add(Announcement(key="session_live:bench", kind="session_live",
                                 community_id=community.id, params={
                                     "community": community.name, "title": "Big one",
                                     "host": "Olu", "starts_at": utcnow().isoformat()},
                                 link="/c/x/live/y", exclude_id=None))
        return community.id, [u.id for u in ids[:2]]

    _, (off, in_app) = run_db(settings, crowd)
    assert notify.announce("session_live:bench") == 0  # chunks were queued instead
    chunks = queued(settings, "notify_chunk")
    assert len(chunks) == -(-(1100 + 4) // jobs.NOTIFY_CHUNK)
    for _, args in chunks:
        notify.notify_chunk(str(args[0]), str(args[1]))
    first = chunks[0][1]
    assert notify.notify_chunk(str(first[0]), str(first[1])) == 0  # a retry tells nobody

    async def counts(session: AsyncSession) -> tuple[int, int, int, int]:
        notes = await session.scalar(select(func.count()).select_from(Notification).where(
            Notification.key == "session_live:bench"))
        mails = await session.scalar(select(func.count()).select_from(MailOutbox).where(
            MailOutbox.kind == "session_live"))
        got_off = await session.scalar(select(func.count()).select_from(Notification).where(
            Notification.key == "session_live:bench", Notification.user_id == off))
        mailed_in_app = await session.scalar(select(func.count()).select_from(MailOutbox)
                                             .where(MailOutbox.user_id == in_app))
        return int(notes or 0), int(mails or 0), int(got_off or 0), int(mailed_in_app or 0)

    people = 1100 + 4  # the crowd, the owner, the moderator and the two members
    assert run_db(settings, counts) == (people - 1, people - 2, 0, 0)
    sends = [j for j in Queue("default", connection=Redis.from_url(settings.redis_url))
             .get_jobs() if j.func_name == "workers.mail.send_mails"]
    assert sum(len(str(j.args[0]).split(",")) for j in sends) >= people - 2
    assert all(len(str(j.args[0]).split(",")) <= jobs.MAIL_CHUNK for j in sends)


def test_choices_are_saved_from_the_account_page(studio: Studio) -> None:
    """Each kind's field on Your settings; an unknown channel is refused."""
    ana = studio.members[0]
    saved = ana.post("/account/notifications", data={
        "session_live": "off", "story_approved": "in_app", "csrf_token": ana.csrf})
    assert saved.status_code == 200
    page = ana.get("/account").text
    assert 'name="session_live">' in page
    for kind, channel in (("session_live", "off"), ("story_approved", "in_app"),
                          ("session_scheduled", "email")):
        field = page.split(f'name="{kind}">', 1)[1].split("</select>", 1)[0]
        assert f'value="{channel}" selected' in field, (kind, field)
    wrong = ana.post("/account/notifications", data={"session_live": "loud",
                                                     "csrf_token": ana.csrf})
    assert wrong.status_code == 422
