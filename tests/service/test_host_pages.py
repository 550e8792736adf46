"""The host's and owner's pages over HTTP: scheduling ends on a confirmation with the link to
share; one session's state and its replay links; admin forms redirect after they post, so a
refresh shows what was made without making it twice."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import LiveSession
from tests.conftest import World, run_db


def test_scheduling_shows_a_confirmation_with_the_link_to_share(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    host = world.join(owner, slug, role="host")
    made = host.post(f"/c/{slug}/live", data={"title": "Roastery tour",
                                              "csrf_token": host.csrf},
                     follow_redirects=False)
    assert made.status_code == 303
    target = made.headers["location"]
    assert re.fullmatch(rf"/c/{slug}/live/\w+/scheduled", target)
    page = host.get(target)
    assert page.status_code == 200
    assert "Your session is scheduled." in page.text
    watch = re.search(r'value="([^"]+)" id="watch-link"', page.text)
    assert watch and watch.group(1).endswith(target.removesuffix("/scheduled"))
    share = re.search(r'href="(https://wa\.me/\?text=[^"]+)"', page.text)
    assert share
    text = parse_qs(urlparse(share.group(1).replace("&amp;", "&")).query)["text"][0]
    assert "Roastery tour" in text and watch.group(1) in text
    assert f'href="{target.removesuffix("/scheduled")}/studio"' in page.text
    # only the host opens it, as the studio
    member = world.join(owner, slug, role="member")
    assert member.get(target).status_code == 403


def test_one_session_and_its_replay(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    host = world.join(owner, slug, role="host")
    member = world.join(owner, slug, role="member")
    made = host.post(f"/api/communities/{slug}/live", json={"title": "Cupping"}).json()
    url = f"/api/communities/{slug}/live/{made['id']}"
    seen = member.get(url).json()
    assert seen["state"] == "scheduled" and seen["replay"] is None

    async def recorded(session: AsyncSession) -> None:
        await session.execute(update(LiveSession).where(LiveSession.id == made["id"])
                              .values(state="ended", recording_state="ready"))

    run_db(world.settings, recorded)
    seen = member.get(url).json()
    assert seen["state"] == "ended" and seen["recording"] == "ready"
    assert seen["replay"]["web"].split("?")[0].endswith(f"live/{made['id']}/rendition/web.mp4")
    page = member.get(f"/c/{slug}/live/{made['id']}").text
    assert 'id="replay"' in page and "rendition/web.mp4" in page
    other_owner = world.admin("Other Owner")
    outsider = world.join(other_owner, world.community(other_owner, "Elsewhere"))
    assert outsider.get(url).status_code == 404


def test_a_replay_that_could_not_be_made_is_said_not_promised(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    host = world.join(owner, slug, role="host")
    made = host.post(f"/api/communities/{slug}/live", json={"title": "Cupping"}).json()

    def ended(recording: str) -> str:
        async def change(session: AsyncSession) -> None:
            await session.execute(update(LiveSession).where(LiveSession.id == made["id"])
                                  .values(state="ended", recording_state=recording))

        run_db(world.settings, change)
        page = host.get(f"/c/{slug}/live/{made['id']}").text
        note = re.search(r'<p class="notice" id="replay-note" role="status" ?(hidden)?>([^<]+)',
                         page)
        assert note, page
        return ("hidden: " if note.group(1) else "") + note.group(2)

    assert ended("processing") == \
        "The replay is being prepared. It appears here when it is ready."
    assert ended("failed") == "The replay could not be prepared."
    assert ended("none").startswith("hidden: ")


def test_an_invite_form_redirects_and_a_refresh_makes_no_second_invite(world: World) -> None:
    owner = world.admin("Olu Owner")
    slug = world.community(owner)
    world.join(owner, slug, role="member", name="Mia Member")

    def invites() -> int:
        return len(owner.get(f"/api/communities/{slug}/invites").json()["invites"])

    before = invites()
    made = owner.post(f"/c/{slug}/admin/invites", data={
        "role": "host", "max_uses": "3", "days": "7", "csrf_token": owner.csrf},
        follow_redirects=False)
    assert made.status_code == 303
    target = made.headers["location"]
    assert re.fullmatch(rf"/c/{slug}/admin\?shown=[\w-]+", target)
    first, again = owner.get(target).text, owner.get(target).text
    link = re.search(r'value="([^"]+/invite/[^"]+)" id="new-invite"', first)
    assert link and link.group(1) in again
    assert "New invite link: joins as host" in first
    assert "Up to 3 people who open this link join" in first
    assert invites() == before + 1
    # it is kept for this person on this page: a co-owner with the same address sees nothing
    co_owner = world.join(owner, slug, role="owner", name="Cole Owner")
    assert "new-invite" not in co_owner.get(target).text
    assert "new-invite" not in owner.get(f"/c/{slug}/admin?shown=made-up").text

def test_no_remove_button_on_ones_own_row(world: World) -> None:
    owner = world.admin("Olu Owner")
    slug = world.community(owner)
    mia = world.join(owner, slug, role="member", name="Mia Member")
    page = owner.get(f"/c/{slug}/admin").text
    assert f"/admin/members/{mia.user_id}/remove" in page
    assert f"/admin/members/{owner.user_id}/remove" not in page
