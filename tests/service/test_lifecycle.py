"""The member lifecycle in numbers: invites sent -> accepted -> first story -> approved ->
featured in a public reel, per prompt, counted from what people really did."""

from __future__ import annotations

from pathlib import Path

from service.settings import Settings
from tests.service.test_error_shape import assert_error
from tests.studio import Studio, share
from tests.workers.test_reels import new_reel, render


def test_numbers_follow_members_through_the_funnel(studio: Studio, settings: Settings,
                                                  story_sources: list[Path]) -> None:
    owner, moderator = studio.owner, studio.moderator
    made = owner.post(studio.api("/prompts"), json={"question": "Your first trail run?"})
    assert made.status_code == 201, made.text
    prompt_id = made.json()["id"]
    first = studio.members[0]
    answer = share(first, studio.slug, story_sources[0], prompt=prompt_id)
    loose_first, loose_second = studio.clips
    for clip in (answer, loose_first):
        assert moderator.post(studio.api(f"/review/{clip}/approve")).status_code == 200
    assert moderator.post(studio.api(f"/review/{loose_second}/reject"),
                          json={"reason": "quality"}).status_code == 200
    reel = new_reel(studio, items=[{"clip_id": answer}])
    assert render(studio, reel["id"])["state"] == "rendered"
    assert moderator.post(studio.api(f"/reels/{reel['id']}/publish")).status_code == 200

    got = owner.get(studio.api("/numbers"))
    assert got.status_code == 200, got.text
    numbers = got.json()
    # the studio invited a moderator and two members; only member invites count
    assert (numbers["invites_sent"], numbers["accepted"]) == (2, 2)
    rows = {row["prompt_id"]: row for row in numbers["prompts"]}
    assert rows[prompt_id] == {"prompt_id": prompt_id, "question": "Your first trail run?",
                               "open": True, "first_story": 1, "approved": 1, "featured": 1}
    assert rows[None] | {"question": None} == {"prompt_id": None, "question": None,
                                               "open": True, "first_story": 2,
                                               "approved": 1, "featured": 0}
    # people, once each: the first member has two approved stories, one featured
    assert numbers["totals"] == {"first_story": 2, "approved": 1, "featured": 1}

    page = owner.get(f"/c/{studio.slug}/admin")
    assert page.status_code == 200
    assert "Members in numbers" in page.text and "Your first trail run?" in page.text
    assert_error(moderator.get(studio.api("/numbers")), 403, "role_forbidden")


def test_a_new_community_has_zeros(studio: Studio) -> None:
    """Before any story: the invites, and nobody further along."""
    numbers = studio.owner.get(studio.api("/numbers")).json()
    assert numbers["totals"]["approved"] == 0 and numbers["totals"]["featured"] == 0
    assert numbers["totals"]["first_story"] == 2
