"""Withdrawal and expiry: consent taken back, abandoned uploads swept, nothing left over."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import AuditEvent, Clip, Upload, utcnow
from service.settings import Settings
from service.storage import open_store
from tests.actors import Actor
from tests.conftest import World, run_db
from tests.service.test_error_shape import assert_error
from tests.uploads.conftest import create, send, tus, unfinished_bytes, upload_all
from workers import jobs
from workers.context import JobContext


@pytest.fixture
def member(world: World, settings: Settings, jobs_here: JobContext) -> tuple[Actor, str]:
    owner = world.admin()
    slug = world.community(owner)
    return world.join(owner, slug), slug


def rows(settings: Settings) -> tuple[list[str], int]:
    async def work(session: AsyncSession) -> tuple[list[str], int]:
        states = list(await session.scalars(select(Clip.state)))
        return states, int(await session.scalar(select(func.count(Upload.id))) or 0)

    return run_db(settings, work)


def test_withdrawing_a_story(member: tuple[Actor, str], media: dict[str, Path],
                             settings: Settings) -> None:
    """Withdrawn: state, audit, and its media deleted by the purge job."""
    actor, slug = member
    upload_all(actor, slug, media["story"].read_bytes())
    clip_id = actor.get(f"/api/communities/{slug}/clips/mine").json()["clips"][0]["id"]
    store = open_store(settings)
    assert [o.key for o in store.list(f"clips/{clip_id}/")] == [f"clips/{clip_id}/source"]
    response = actor.post(f"/api/communities/{slug}/clips/{clip_id}/withdraw")
    assert response.status_code == 200 and response.json()["state"] == "withdrawn"
    assert Redis.from_url(settings.redis_url).exists(f"rq:job:purge-{clip_id}")
    assert jobs.purge_clip_media(clip_id) == 1
    assert list(store.list(f"clips/{clip_id}/")) == []
    assert_error(actor.post(f"/api/communities/{slug}/clips/{clip_id}/withdraw"), 409,
                 "invalid_transition")

    async def audit(session: AsyncSession) -> list[str]:
        return list(await session.scalars(select(AuditEvent.action).where(
            AuditEvent.subject_id == clip_id).order_by(AuditEvent.id)))

    assert run_db(settings, audit) == ["consent.given", "clip.uploaded", "consent.withdrawn"]


def test_withdrawing_during_upload(member: tuple[Actor, str], media: dict[str, Path],
                                   settings: Settings) -> None:
    """An unfinished upload stops: its bytes go, further PATCHes are refused."""
    actor, slug = member
    data = media["story"].read_bytes()
    location = create(actor, slug, len(data)).headers["location"]
    send(actor, location, 0, data[:2000])
    clip_id = actor.get(f"/api/communities/{slug}/clips/mine").json()["clips"][0]["id"]
    assert actor.post(f"/api/communities/{slug}/clips/{clip_id}/withdraw").status_code == 200
    assert rows(settings) == (["withdrawn"], 0)
    assert unfinished_bytes(settings) == []
    assert send(actor, location, 2000, data[2000:]).status_code == 404


def test_only_the_member_withdraws(world: World, media: dict[str, Path]) -> None:
    """Consent is the member's own: no fellow member, owner or outsider can withdraw it."""
    owner = world.admin()
    slug = world.community(owner)
    author = world.join(owner, slug, "member", "Author")
    fellow = world.join(owner, slug, "member", "Fellow")
    upload_all(author, slug, media["story"].read_bytes())
    clip_id = author.get(f"/api/communities/{slug}/clips/mine").json()["clips"][0]["id"]
    for someone in (fellow, owner):
        assert_error(someone.post(f"/api/communities/{slug}/clips/{clip_id}/withdraw"), 404,
                     "clip_not_found")
    other_owner = world.admin("Other Owner")
    outsider = world.join(other_owner, world.community(other_owner, "Other"))
    assert_error(outsider.post(f"/api/communities/{slug}/clips/{clip_id}/withdraw"), 404,
                 "community_not_found")
    assert author.get(f"/api/communities/{slug}/clips/mine").json()["clips"][0]["state"] == \
        "uploaded"


def test_abandoned_uploads_expire(member: tuple[Actor, str], media: dict[str, Path],
                                  settings: Settings) -> None:
    """Past its expiry an upload answers 410; the sweep job removes its bytes and rows."""
    actor, slug = member
    data = media["story"].read_bytes()
    stale = create(actor, slug, len(data)).headers["location"]
    send(actor, stale, 0, data[:3000])
    fresh = create(actor, slug, len(data)).headers["location"]
    send(actor, fresh, 0, data[:1000])

    async def age(session: AsyncSession) -> None:
        await session.execute(update(Upload).where(Upload.id == stale.rsplit("/", 1)[1])
                              .values(expires_at=utcnow() - timedelta(minutes=1)))

    run_db(settings, age)
    assert actor.request("HEAD", stale, headers=tus()).status_code == 410
    assert_error(send(actor, stale, 3000, data[3000:]), 410, "upload_gone")
    assert jobs.expire_uploads() == 1
    assert rows(settings) == (["uploading"], 1)
    assert len(unfinished_bytes(settings)) == 1
    assert actor.request("HEAD", fresh, headers=tus()).headers["upload-offset"] == "1000"
