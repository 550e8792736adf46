"""Moderators review stories: the queue and its filters, decisions with reasons the member
reads, trims and captions with their history, all audited; nobody else gets in."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import AuditEvent
from service.settings import Settings
from tests.conftest import World, run_db
from tests.service.test_error_shape import assert_error
from tests.studio import Studio


def audit_actions(settings: Settings, subject_id: str) -> list[str]:
    async def work(session: AsyncSession) -> list[str]:
        return list(await session.scalars(select(AuditEvent.action).where(
            AuditEvent.subject_id == subject_id).order_by(AuditEvent.id)))

    return run_db(settings, work)


def test_queue_shows_waiting_stories_with_media_and_facts(studio: Studio) -> None:
    got = studio.moderator.get(studio.api("/review"))
    assert got.status_code == 200, got.text
    body = got.json()
    assert [c["id"] for c in body["clips"]] == studio.clips  # oldest first
    first = body["clips"][0]
    assert first["state"] == "ready_for_review" and first["member"]["display_name"] == "Ana O'Neil"
    assert first["frames"] == 90 and (first["trim_in"], first["trim_out"]) == (0, 90)
    assert first["consent"]["release_version"] == 1 and first["consent"]["consented_at"]
    assert first["facts"]["video"]["width"] == 360
    poster = studio.moderator.get(first["media"]["poster"].replace("http://testserver", ""))
    assert poster.status_code == 200 and poster.content[:2] == b"\xff\xd8"
    assert {r["code"] for r in body["reasons"]} >= {"off_topic", "quality", "other"}


def test_approve_and_reject_with_a_reason_the_member_reads(studio: Studio,
                                                           settings: Settings) -> None:
    mod, (ana, budi) = studio.moderator, studio.members
    first, second = studio.clips
    approved = mod.post(studio.api(f"/review/{first}/approve"))
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    rejected = mod.post(studio.api(f"/review/{second}/reject"),
                        json={"reason": "quality", "note": "Too dark: try by a window."})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    mine = budi.get(studio.api("/clips/mine")).json()["clips"][0]
    assert mine["state"] == "rejected"
    assert mine["reason"] == "The picture or sound is too poor to use."
    assert mine["hint"] == "Too dark: try by a window."
    assert ana.get(studio.api("/clips/mine")).json()["clips"][0]["state"] == "approved"
    assert [c["id"] for c in mod.get(studio.api("/review")).json()["clips"]] == []
    assert [c["id"] for c in mod.get(studio.api("/review?state=approved")).json()["clips"]] \
        == [first]
    assert audit_actions(settings, first)[-1] == "clip.approved"
    assert audit_actions(settings, second)[-1] == "clip.rejected"
    # decisions follow the clip's state machine, and reasons come from the list
    assert_error(mod.post(studio.api(f"/review/{first}/approve")), 409, "invalid_transition")
    assert_error(mod.post(studio.api(f"/review/{first}/reject"), json={"reason": "nope"}), 422,
                 "invalid_reason")
    # a rejected story can still be approved on a second look
    assert mod.post(studio.api(f"/review/{second}/approve")).json()["state"] == "approved"


def test_filters(studio: Studio) -> None:
    mod = studio.moderator
    assert len(mod.get(studio.api("/review?source=upload")).json()["clips"]) == 2
    assert mod.get(studio.api("/review?source=live")).json()["clips"] == []
    assert mod.get(studio.api("/review?prompt=999")).json()["clips"] == []
    assert_error(mod.get(studio.api("/review?state=withdrawn")), 422, "invalid_state")
    assert_error(mod.get(studio.api("/review?source=fax")), 422, "invalid_source")
    assert_error(mod.get(studio.api("/review?prompt=x")), 400, "invalid_parameter")


def test_trim_and_caption_are_checked_and_kept_as_history(studio: Studio,
                                                          settings: Settings) -> None:
    mod, clip = studio.moderator, studio.clips[0]
    url = studio.api(f"/review/{clip}")

    def edit(body: dict[str, Any]) -> httpx.Response:
        return mod.patch(url, json=body)

    done = edit({"trim_in": 10, "trim_out": 85, "caption_quote": "  Best run   ever  "})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["trim_in"], body["trim_out"]) == (10, 85)
    assert body["caption_quote"] == "Best run ever" and body["caption_name"] == "Ana O'Neil"
    edit({"caption_name": "Ana"})
    history = mod.get(url).json()["edits"]
    assert [list(e["changes"]) for e in history] == [["caption_name"],
                                                     ["trim_in", "trim_out", "caption_quote"]]
    assert history[1]["changes"]["trim_in"] == [0, 10] and history[0]["editor"] == "Mo Moderator"
    assert_error(edit({"trim_in": 50, "trim_out": 40}), 422, "invalid_trim")
    assert_error(edit({"trim_in": 0, "trim_out": 91}), 422, "invalid_trim")
    assert_error(edit({"trim_in": 0, "trim_out": 59}), 422, "trim_too_short")
    assert_error(edit({"trim_in": "0"}), 422, "invalid_trim")
    assert_error(edit({"caption_quote": "x" * 121}), 422, "caption_too_long")
    assert_error(edit({"colour": "red"}), 422, "unknown_fields")
    assert audit_actions(settings, clip).count("clip.edited") == 2


def test_only_moderators_review(studio: Studio, world: World) -> None:
    """Members get 403, outsiders 404, anonymous 401; CSRF guards cookie changes."""
    clip = studio.clips[0]
    member = studio.members[0]
    host = world.join(studio.owner, studio.slug, "host", "Hana Host")
    outsider_owner = world.admin("Elsewhere")
    outsider = world.join(outsider_owner, world.community(outsider_owner, "Other"))
    for who in (member, host):
        assert_error(who.get(studio.api("/review")), 403, "role_forbidden")
        assert_error(who.post(studio.api(f"/review/{clip}/approve")), 403, "role_forbidden")
    assert_error(outsider.get(studio.api("/review")), 404, "community_not_found")
    anonymous = type(member)(member.client)
    assert_error(anonymous.get(studio.api("/review")), 401, "not_authenticated")
    assert_error(studio.moderator.post(studio.api(f"/review/{clip}/approve"), csrf=False), 403,
                 "csrf_failed")
    assert studio.owner.post(studio.api(f"/review/{clip}/approve")).status_code == 200
