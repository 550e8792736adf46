"""Choosing the language and the clock: community, person and browser; release texts per
language; scheduling in local time; API errors and member-facing reasons told in Indonesian."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip, LiveSession
from service.domain import clips
from service.domain.communities import DEFAULT_RELEASES
from tests.conftest import World, run_db

ID = {"Accept-Language": "id-ID,id;q=0.9"}
EN = {"Accept-Language": "en-US,en;q=0.9"}


def test_a_visitor_reads_the_language_their_browser_asks_for(world: World) -> None:
    """The same page in Indonesian and in English, `<html lang>` following."""
    page_id = world.client.get("/login", headers=ID).text
    page_en = world.client.get("/login", headers=EN).text
    assert '<html lang="id"' in page_id and ">Masuk</h1>" in page_id
    assert '<html lang="en"' in page_en and ">Log in</h1>" in page_en
    # no preference Kumpul speaks: the site's language (English in these tests' settings)
    assert '<html lang="en"' in world.client.get("/login", headers={"Accept-Language": "fr"}).text


def test_a_new_community_speaks_the_sites_language_and_indonesian_by_default(
        world: World) -> None:
    """Kumpul's default is Indonesian on Jakarta time; both release texts are seeded."""
    owner = world.admin()
    made = owner.post("/api/communities", json={"name": "Kopi Kita"}).json()
    assert (made["language"], made["time_zone"]) == ("en", "Asia/Jakarta")  # test settings
    default = world.settings.replace(language="id")
    assert default.language == "id"
    made = owner.post("/api/communities", json={"name": "Kopi Dua", "language": "id"}).json()
    assert made["language"] == "id"
    shown = owner.get(f"/api/communities/{made['slug']}").json()
    assert shown["release"]["language"] == "id"
    assert shown["release"]["body"] == DEFAULT_RELEASES["id"].format(community="Kopi Dua")


def test_the_communitys_language_then_the_persons_own(world: World) -> None:
    """Members read the community's language whatever their browser says, until they choose
    their own; the choice is saved on the account."""
    owner = world.admin()
    slug = world.community(owner)
    member = world.join(owner, slug)
    changed = owner.patch(f"/api/communities/{slug}",
                          json={"language": "id", "time_zone": "Asia/Makassar"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["time_zone"] == "Asia/Makassar"
    page = member.get(f"/c/{slug}", headers=EN).text
    assert '<html lang="id" data-tz="Asia/Makassar"' in page and "Bagikan ceritamu" in page
    me = member.patch("/api/me", json={"language": "en", "time_zone": "Asia/Jayapura"})
    assert me.json()["language"] == "en"
    page = member.get(f"/c/{slug}", headers=ID).text
    assert '<html lang="en" data-tz="Asia/Jayapura"' in page and "Share your story" in page
    member.patch("/api/me", json={"language": None, "time_zone": None})
    assert '<html lang="id"' in member.get(f"/c/{slug}", headers=EN).text


def test_api_errors_keep_their_code_and_speak_the_readers_language(world: World) -> None:
    """`code` stays an English identifier; `message` and `hint` are translated, with their
    values formatted for the language: the person's own, else the community's (pages send
    the language they are in), else the browser's."""
    owner = world.admin()
    slug = world.community(owner)  # an English community
    english = owner.patch(f"/api/communities/{slug}", json={"time_zone": "Mars/Base"},
                          headers=ID).json()["error"]
    assert english["message"] == "'Mars/Base' is not a time zone we know."
    owner.patch("/api/me", json={"language": "id"})
    bad = owner.patch(f"/api/communities/{slug}", json={"time_zone": "Mars/Base"}, headers=EN)
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "invalid_time_zone"
    assert error["message"] == "'Mars/Base' bukan zona waktu yang kami kenal."
    assert "Asia/Makassar (WITA)" in error["hint"]
    anonymous = world.client.get("/api/me", headers=ID).json()["error"]
    assert (anonymous["code"], anonymous["message"]) == ("not_authenticated",
                                                         "Kamu belum masuk.")


def test_a_session_scheduled_in_local_time_is_stored_in_utc_and_shown_in_the_zone(
        world: World) -> None:
    """19:00 typed by a host in a WITA community is 11:00 UTC, and members read 19.00 WITA."""
    owner = world.admin()
    slug = world.community(owner)
    owner.patch(f"/api/communities/{slug}", json={"language": "id",
                                                  "time_zone": "Asia/Makassar"})
    host = world.join(owner, slug, role="host")
    made = host.post(f"/c/{slug}/live", data={"title": "Seduh malam",
                                              "starts_at": "2030-12-07T19:00",
                                              "csrf_token": host.csrf},
                     follow_redirects=False)
    assert made.status_code == 303, made.text

    async def stored(session: AsyncSession) -> datetime:
        row = await session.scalar(select(LiveSession).where(LiveSession.title == "Seduh malam"))
        assert row is not None
        return row.starts_at

    assert run_db(world.settings, stored) == datetime(2030, 12, 7, 11, 0, tzinfo=UTC)
    page = host.get(f"/c/{slug}").text
    assert "Sabtu, 7 Des 2030 19.00 WITA" in page
    assert "Mulai (WITA)" in page and "UTC" not in page


def test_release_texts_are_versioned_per_language_and_a_clip_records_which_it_accepted(
        world: World) -> None:
    """Each language counts its own versions; the clip keeps version, language and hash."""
    owner = world.admin()
    slug = world.community(owner)
    english = "I made this and Kopi Kita may show it in its reels, with my name on it."
    published = owner.post(f"/api/communities/{slug}/release",
                           json={"body": english, "language": "en"}).json()
    assert (published["language"], published["version"]) == ("en", 2)
    indonesian = owner.get(f"/api/communities/{slug}", headers=ID)
    assert indonesian.status_code == 200
    member = world.join(owner, slug)

    def start(language: str, version: int) -> int:
        meta = {"community": slug, "release": str(version), "release_language": language,
                "filename": "a.mp4"}
        header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                          for k, v in meta.items())
        return member.post("/api/uploads", headers={
            "Tus-Resumable": "1.0.0", "Upload-Length": "100",
            "Upload-Metadata": header}).status_code

    assert start("en", 1) == 409  # English is at version 2 now
    assert start("id", 1) == 201  # Indonesian is still at its version 1
    assert start("en", 2) == 201

    async def consents(session: AsyncSession) -> list[tuple[str | None, int, str]]:
        rows = await session.scalars(select(Clip).order_by(Clip.created_at))
        return [(c.release_language, c.release_version, c.release_sha256) for c in rows]

    name = owner.get(f"/api/communities/{slug}").json()["name"]
    assert run_db(world.settings, consents) == [
        ("id", 1, hashlib.sha256(DEFAULT_RELEASES["id"].format(community=name).encode())
         .hexdigest()),
        ("en", 2, hashlib.sha256(english.encode()).hexdigest()),
    ]


def test_a_refusal_is_told_to_the_member_in_their_language(world: World) -> None:
    """A clip's reason is kept as a msgid with its values, and read in the member's words."""
    owner = world.admin()
    slug = world.community(owner)
    owner.patch(f"/api/communities/{slug}", json={"language": "id"})
    member = world.join(owner, slug)
    meta = f"community {base64.b64encode(slug.encode()).decode()},release MQ=="
    assert member.post("/api/uploads", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": "100",
        "Upload-Metadata": meta}).status_code == 201

    async def refuse(session: AsyncSession) -> None:
        clip = await session.scalar(select(Clip))
        assert clip is not None
        clip.state = "processing"
        await clips.refuse(session, clip, code="clip_too_long",
                           message="This video is %(length_seconds)s long; stories can be at "
                                   "most %(max_seconds)s.", hint="Trim it and try again.",
                           args={"length_seconds": 200, "max_seconds": 180})

    run_db(world.settings, refuse)
    mine = member.get(f"/api/communities/{slug}/clips/mine", headers=EN).json()["clips"][0]
    assert mine["reason"] == "Panjang video ini 3 menit 20 detik; cerita paling lama 3 menit."
    assert mine["hint"] == "Potong lalu coba lagi."
    assert "Panjang video ini 3 menit 20 detik" in member.get(f"/c/{slug}/stories").text


def test_a_page_tells_its_error_in_the_pages_language(world: World) -> None:
    """A form refused on an Indonesian community's page says why in Indonesian, whatever
    the browser asks for."""
    owner = world.admin()
    slug = world.community(owner)
    owner.patch(f"/api/communities/{slug}", json={"language": "id"})
    page = owner.post(f"/c/{slug}/admin/settings", headers=EN,
                      data={"time_zone": "Mars/Base", "csrf_token": owner.csrf})
    assert page.status_code == 422
    assert "&#39;Mars/Base&#39; bukan zona waktu yang kami kenal." in page.text
    assert '<html lang="id"' in page.text
