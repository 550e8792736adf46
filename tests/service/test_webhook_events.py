"""Each event type becomes a delivery when its change commits, with its subject's data, for
the endpoints that asked for it (and only those); nothing for a change that rolls back.
(Sending them is proven over the wire in tests/workers/test_webhooks.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Community, LiveSession, WebhookDelivery
from service.domain import deliveries, finder_state, live, moments
from service.domain.finder_state import FinderState
from service.domain.webhooks import EVENT_TYPES
from service.settings import Settings
from tests.conftest import World, run_db
from tests.studio import Studio, share
from tests.workers.test_reels import new_reel, render

PUBLIC = "https://93.184.215.14/in"  # never reached: no worker runs in these tests


def recorded(settings: Settings, endpoint_id: str) -> list[dict[str, Any]]:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.scalars(select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.id))
        return [row.payload for row in rows]

    return run_db(settings, work)


def test_moderation_and_reels_record_their_events(studio: Studio, settings: Settings,
                                                  story_sources: list[Path]) -> None:
    everything = studio.owner.post(studio.api("/webhooks"), json={
        "url": PUBLIC, "event_types": list(EVENT_TYPES)}).json()
    reels_only = studio.owner.post(studio.api("/webhooks"), json={
        "url": PUBLIC, "event_types": ["reel.published"]}).json()
    fresh = share(studio.members[1], studio.slug, story_sources[1])
    approved = studio.clips[0]
    assert studio.moderator.post(studio.api(f"/review/{approved}/approve")).status_code == 200
    reel = new_reel(studio, items=[{"clip_id": approved}])
    render(studio, reel["id"])
    assert studio.moderator.post(studio.api(f"/reels/{reel['id']}/publish")).status_code == 200
    assert studio.moderator.post(
        studio.api(f"/reels/{reel['id']}/unpublish")).status_code == 200

    got = recorded(settings, everything["id"])
    assert [p["type"] for p in got] == ["clip.ready_for_review", "clip.approved",
                                        "reel.published", "reel.unpublished"]
    assert {p["data"]["community"] for p in got} == {studio.slug}
    assert got[0]["data"]["clip"]["id"] == fresh
    assert got[0]["data"]["clip"]["state"] == "ready_for_review"
    assert got[1]["data"]["clip"] | {"updated_at": None} == {
        "id": approved, "state": "approved", "title": got[1]["data"]["clip"]["title"],
        "prompt_id": None, "member_id": studio.members[0].user_id, "source": "upload",
        "reason": None, "updated_at": None}
    assert got[2]["data"]["reel"]["slug"] == reel["slug"]
    assert got[2]["data"]["reel"]["version"] == 1
    assert got[3]["data"]["reel"]["state"] == "unpublished"
    assert [p["type"] for p in recorded(settings, reels_only["id"])] == ["reel.published"]


def test_live_sessions_and_moments_record_their_events(world: World,
                                                       settings: Settings) -> None:
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(f"/api/communities/{slug}/webhooks", json={
        "url": PUBLIC, "event_types": ["live.started", "live.ended", "moment.proposed"]}).json()
    made = owner.post(f"/api/communities/{slug}/live", json={"title": "Kopi pagi"}).json()

    async def go_live(session: AsyncSession) -> None:
        await live.go_live(session, made["id"])
        for n in range(40):  # a burst of reactions 20 s in
            await live.add_event(session, made["id"], "reaction", owner.user_id or 0, "🎉",
                                 20_000 + n * 50)

    run_db(settings, go_live)
    assert owner.post(f"/api/communities/{slug}/live/{made['id']}/end").status_code == 200

    async def propose(session: AsyncSession) -> int:
        row = await session.get(LiveSession, made["id"])
        assert row is not None
        finder_state.transition(row, FinderState.finding)
        signals = {"duration": 60.0, "loudness": [[t / 10, -30.0] for t in range(600)],
                   "scenes": []}
        return len(await moments.store_proposals(session, made["id"], signals,
                                                 moments.Limits.from_settings(settings)))

    proposed = run_db(settings, propose)
    assert proposed >= 1
    got = recorded(settings, endpoint["id"])
    assert [p["type"] for p in got] == ["live.started", "live.ended"] + \
        ["moment.proposed"] * proposed
    assert got[0]["data"]["session"]["id"] == made["id"]
    assert got[0]["data"]["session"]["started_at"] is not None
    assert got[1]["data"]["session"]["state"] == "ended"
    moment = got[2]["data"]["moment"]
    assert moment["session_id"] == made["id"] and moment["start_ms"] <= 20_000 <= moment["end_ms"]


def test_a_change_that_rolls_back_records_nothing(world: World, settings: Settings) -> None:
    """The delivery is written in the change's own transaction: no commit, no delivery."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(f"/api/communities/{slug}/webhooks", json={
        "url": PUBLIC, "event_types": ["live.started"]}).json()
    made = owner.post(f"/api/communities/{slug}/live", json={"title": "Kopi sore"}).json()

    async def go_live_then_fail(session: AsyncSession) -> None:
        await live.go_live(session, made["id"])
        raise RuntimeError("the change fails after the event")

    with pytest.raises(RuntimeError):
        run_db(settings, go_live_then_fail)
    assert recorded(settings, endpoint["id"]) == []


def test_the_delivery_log_is_bounded(world: World, settings: Settings) -> None:
    """An endpoint keeps its newest 200 deliveries; older finished ones go, pending ones
    stay until they are done."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(f"/api/communities/{slug}/webhooks", json={
        "url": PUBLIC, "event_types": ["live.ended"]}).json()

    async def flood(session: AsyncSession) -> None:
        row = await session.scalar(select(Community).where(Community.slug == slug))
        assert row is not None
        for n in range(deliveries.KEEP + 10):
            await deliveries.emit(session, row.id, "live.ended", {"session": {"id": str(n)}})
        await session.execute(update(WebhookDelivery).where(
            WebhookDelivery.id <= 5).values(state="delivered"))
        await deliveries.emit(session, row.id, "live.ended", {"session": {"id": "last"}})

    run_db(settings, flood)
    kept = recorded(settings, endpoint["id"])
    assert len(kept) == deliveries.KEEP + 11 - 5  # the five finished oldest are gone
    assert kept[0]["data"]["session"]["id"] == "5" and kept[-1]["data"]["session"]["id"] == "last"
