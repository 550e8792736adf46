"""Reels end to end: compose through the API, render with the job, publish at a public
page with Range and card tags, unpublish at once; and consent that follows the clip."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import httpx2 as httpx
from redis import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import AuditEvent, Reel
from service.settings import Settings
from service.storage import open_store
from tests import media_files
from tests.actors import Actor
from tests.conftest import run_db
from tests.service.test_error_shape import assert_error
from tests.studio import Studio
from workers.jobs import purge_clip_media, reconcile
from workers.reels import render_reel

TITLE = 60  # frames of a title card


def approve_all(studio: Studio) -> None:
    for clip in studio.clips:
        assert studio.moderator.post(studio.api(f"/review/{clip}/approve")).status_code == 200


def new_reel(studio: Studio, **change: Any) -> dict[str, Any]:
    made = studio.moderator.post(studio.api("/reels"), json={"title": "Spring: 100% \"real\""})
    assert made.status_code == 201, made.text
    reel: dict[str, Any] = made.json()
    if change:
        changed = studio.moderator.patch(studio.api(f"/reels/{reel['id']}"), json=change)
        assert changed.status_code == 200, changed.text
        reel = changed.json()
    return reel


def render(studio: Studio, reel_id: str) -> dict[str, Any]:
    """Ask for a render, run the queued job as a worker would, return the reel."""
    asked = studio.moderator.post(studio.api(f"/reels/{reel_id}/render"))
    assert asked.status_code == 202, asked.text
    version = asked.json()["version"]
    assert asked.json()["state"] == "rendering"
    assert render_reel(reel_id, version) in ("rendered", "published")
    return dict(studio.moderator.get(studio.api(f"/reels/{reel_id}")).json())


def local(url: str) -> str:
    return url.replace("http://testserver", "")


def frames_of(actor: Actor, url: str, tmp: Any) -> int:
    """Frames of the video at `url`: the app's own, or a signed link to the S3 server."""
    if url.startswith("http://testserver") or url.startswith("/"):
        body = actor.get(local(url))
    else:
        body = httpx.get(url)
    assert body.status_code == 200
    path = tmp / "got.mp4"
    path.write_bytes(body.content)
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v",
                          "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0",
                          str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def audit(settings: Settings, subject_id: str) -> list[str]:
    async def work(session: AsyncSession) -> list[str]:
        return list(await session.scalars(select(AuditEvent.action).where(
            AuditEvent.subject_id == subject_id).order_by(AuditEvent.id)))

    return run_db(settings, work)


def test_compose_render_publish_unpublish(studio: Studio, settings: Settings,
                                          tmp_path: Any) -> None:
    """A 9:16 reel with a crossfade, a title card and captions: rendered frame-exact, its
    manifest stored, published with a player page, Range and card tags; unpublished at once."""
    approve_all(studio)
    mod = studio.moderator
    reel = new_reel(studio, items=[{"clip_id": studio.clips[0], "trim_in": 6, "trim_out": 84},
                                   {"clip_id": studio.clips[1]}],
                    transition="crossfade", crossfade_frames=15,
                    title_card={"text": "Spring: 100% \"real\" \\o/", "color": "#FF6600"})
    assert reel["state"] == "draft" and reel["composition"]["captions"] is True
    assert Redis.from_url(settings.redis_url).exists(f"rq:job:reel-{reel['id']}-v1") == 0
    done = render(studio, reel["id"])
    assert done["state"] == "rendered" and done["rendered_version"] == 1
    expected = TITLE + 78 + 90 - 2 * 15
    assert done["output"]["frames"] == expected
    assert frames_of(mod, done["preview"]["video"], tmp_path) == expected
    manifest = done["manifest"]
    assert [c["clip_id"] for c in manifest["clips"]] == studio.clips
    assert manifest["clips"][0]["release_version"] == 1 and manifest["clips"][0]["clip_version"]
    assert manifest["clips"][0]["caption"]["name"] == "Ana O'Neil"
    assert manifest["ffmpeg"].startswith("ffmpeg version") and manifest["overlap"] == 15
    stored = json.loads(b"".join(open_store(settings).get(
        f"reels/{reel['id']}/v1/manifest.json")))
    assert stored == manifest

    # not public until published
    anonymous = Actor(mod.client)
    assert anonymous.get(f"/r/{done['slug']}").status_code == 404
    assert_error(mod.post(studio.api(f"/reels/{reel['id']}/unpublish")), 409,
                 "invalid_transition")
    published = mod.post(studio.api(f"/reels/{reel['id']}/publish")).json()
    assert published["state"] == "published" and published["public_url"].endswith(done["slug"])
    assert "<iframe" in published["embed"]
    page = anonymous.get(f"/r/{done['slug']}")
    assert page.status_code == 200
    for tag in ('property="og:video"', 'name="twitter:card" content="player"',
                'property="og:image"', "playsinline"):
        assert tag in page.text
    assert re.search(r"<h1>Spring: 100% &(#34|quot);real&(#34|quot);</h1>", page.text)
    video = anonymous.get(f"/r/{done['slug']}/video.mp4", headers={"Range": "bytes=0-99"})
    assert video.status_code == 206 and len(video.content) == 100
    assert video.headers["content-range"].startswith("bytes 0-99/")
    assert video.headers["accept-ranges"] == "bytes"
    assert anonymous.get(f"/r/{done['slug']}/poster.jpg").content[:2] == b"\xff\xd8"
    embed = anonymous.get(f"/r/{done['slug']}/embed")
    embed_policy = embed.headers["content-security-policy"]
    assert embed_policy.endswith("frame-ancestors *") and "script-src 'self'" in embed_policy
    assert "x-frame-options" not in embed.headers
    assert page.headers["x-frame-options"] == "DENY"
    download = mod.get(studio.api(f"/reels/{reel['id']}/download"), follow_redirects=False)
    assert download.status_code == 303
    # a title change waits for the next publish: the public page keeps what was published
    renamed = mod.patch(studio.api(f"/reels/{reel['id']}"), json={"title": "Renamed later"})
    assert renamed.status_code == 200, renamed.text
    for path in ("", "/embed"):
        shown = anonymous.get(f"/r/{done['slug']}{path}").text
        assert "Renamed later" not in shown and "Spring: 100%" in shown

    mod.post(studio.api(f"/reels/{reel['id']}/unpublish"))
    for path in ("", "/video.mp4", "/embed", "/poster.jpg"):
        assert anonymous.get(f"/r/{done['slug']}{path}").status_code == 404
    assert audit(settings, reel["id"]) == [
        "reel.created", "reel.edited", "reel.render_requested", "reel.rendered",
        "reel.published", "reel.edited", "reel.unpublished"]
    assert mod.post(studio.api(f"/reels/{reel['id']}/publish")).status_code == 200
    assert "<h1>Renamed later</h1>" in anonymous.get(f"/r/{done['slug']}").text


def test_withdrawal_chain(studio: Studio, settings: Settings, tmp_path: Any) -> None:
    """A withdrawn clip leaves every reel that used it: public access ends at once, the reel
    goes stale and is rendered again without it and republished; when no clip remains it is
    unpublished. The audit log shows the chain; no file of the old renders is left."""
    approve_all(studio)
    mod, (ana, budi) = studio.moderator, studio.members
    reel = new_reel(studio, items=[{"clip_id": c} for c in studio.clips])
    done = render(studio, reel["id"])
    mod.post(studio.api(f"/reels/{reel['id']}/publish"))
    anonymous = Actor(mod.client)
    assert anonymous.get(f"/r/{done['slug']}/video.mp4").status_code == 200
    store = open_store(settings)
    assert list(store.list(f"clips/{studio.clips[0]}/pieces/"))

    assert ana.post(studio.api(f"/clips/{studio.clips[0]}/withdraw")).status_code == 200
    assert anonymous.get(f"/r/{done['slug']}").status_code == 404  # at once
    now = mod.get(studio.api(f"/reels/{reel['id']}")).json()
    assert now["state"] == "rendering" and now["version"] == 2 and now["preview"] is None
    assert [i["clip_id"] for i in now["composition"]["items"]] == [studio.clips[1]]
    assert Redis.from_url(settings.redis_url).exists(f"rq:job:reel-{reel['id']}-v2")
    assert purge_clip_media(studio.clips[0]) > 0
    assert list(store.list(f"clips/{studio.clips[0]}/")) == []

    assert render_reel(reel["id"], 2) == "published"
    again = mod.get(studio.api(f"/reels/{reel['id']}")).json()
    assert again["public_version"] == 2 and again["output"]["frames"] == 90
    assert frames_of(anonymous, f"/r/{done['slug']}/video.mp4", tmp_path) == 90
    assert [c["clip_id"] for c in again["manifest"]["clips"]] == [studio.clips[1]]
    assert not [o.key for o in store.list(f"reels/{reel['id']}/v1/")]

    assert budi.post(studio.api(f"/clips/{studio.clips[1]}/withdraw")).status_code == 200
    last = mod.get(studio.api(f"/reels/{reel['id']}")).json()
    assert last["state"] == "unpublished" and last["reason"] == "No clips remain in this reel."
    assert anonymous.get(f"/r/{done['slug']}").status_code == 404
    assert audit(settings, reel["id"]) == [
        "reel.created", "reel.edited", "reel.render_requested", "reel.rendered",
        "reel.published",
        "reel.stale", "reel.render_requested", "reel.rendered", "reel.published",
        "reel.stale", "reel.unpublished"]

    async def stale_data(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.scalars(select(AuditEvent.data).where(
            AuditEvent.action == "reel.stale").order_by(AuditEvent.id))
        return list(rows)

    first, second = run_db(settings, stale_data)
    assert first == {"clip_id": studio.clips[0], "because": "consent.withdrawn",
                     "was_public": True}
    assert second["clip_id"] == studio.clips[1]


def test_render_superseded_by_withdrawal_leaves_nothing(studio: Studio,
                                                        settings: Settings) -> None:
    """A withdrawal while a render is queued: that render is skipped, the next one runs."""
    approve_all(studio)
    reel = new_reel(studio, items=[{"clip_id": c} for c in studio.clips])
    studio.moderator.post(studio.api(f"/reels/{reel['id']}/render"))
    studio.members[0].post(studio.api(f"/clips/{studio.clips[0]}/withdraw"))
    assert render_reel(reel["id"], 1) == "skipped"
    assert render_reel(reel["id"], 2) == "rendered"
    assert not list(open_store(settings).list(f"reels/{reel['id']}/v1/"))


def test_composition_is_checked(studio: Studio) -> None:
    mod = studio.moderator
    reel = new_reel(studio)
    url = studio.api(f"/reels/{reel['id']}")

    def change(body: dict[str, Any]) -> httpx.Response:
        return mod.patch(url, json=body)

    assert_error(change({"items": [{"clip_id": studio.clips[0]}]}), 409, "clip_not_approved")
    approve_all(studio)
    assert_error(change({"items": [{"clip_id": "nope"}]}), 404, "clip_not_found")
    assert_error(change({"items": [{"clip_id": studio.clips[0], "trim_in": 80}]}), 422,
                 "trim_too_short")
    assert_error(change({"items": [{"clip_id": studio.clips[0]}] * 2}), 422, "duplicate_clip")
    assert_error(change({"items": "all"}), 422, "invalid_items")
    assert_error(change({"canvas": "4:3"}), 422, "invalid_canvas")
    assert_error(change({"transition": "wipe"}), 422, "invalid_reel_transition")
    assert_error(change({"crossfade_frames": 7}), 422, "invalid_reel_transition")
    assert_error(change({"title_card": {"text": "Hi", "color": "red"}}), 422, "invalid_color")
    assert_error(change({"title_card": {"text": ""}}), 422, "invalid_title_card")
    assert_error(change({"music_asset": "missing"}), 404, "asset_not_found")
    assert_error(change({"speed": 2}), 422, "unknown_fields")
    assert_error(mod.post(f"{url}/render"), 409, "reel_empty")
    assert_error(mod.post(f"{url}/publish"), 409, "reel_not_rendered")
    assert_error(mod.post(studio.api("/reels"), json={"title": " "}), 422, "title_required")
    change({"items": [{"clip_id": studio.clips[0]}]})
    assert mod.post(f"{url}/render").status_code == 202
    assert_error(change({"title": "Busy"}), 409, "reel_busy")
    assert_error(mod.post(f"{url}/render"), 409, "invalid_transition")
    for who in studio.members:
        assert_error(who.get(studio.api("/reels")), 403, "role_forbidden")
        assert_error(who.patch(url, json={"title": "x"}), 403, "role_forbidden")


def test_music_and_intro_assets(studio: Studio, tmp_path: Any) -> None:
    """Moderators add music and an intro; the reel starts with the intro, music under it."""
    approve_all(studio)
    mod = studio.moderator
    music = media_files.ffmpeg_out(tmp_path / "music.mp3", "-f", "lavfi", "-i",
                                   "anoisesrc=c=pink:d=3:a=0.3", "-c:a", "libmp3lame")
    intro = media_files.story_mp4(tmp_path / "intro.mp4", 2, "640x360")
    added = {}
    for kind, path in (("music", music), ("intro", intro)):
        got = mod.post(studio.api(f"/assets?kind={kind}&name={path.name}"),
                       content=path.read_bytes(),
                       headers={"Content-Type": "application/octet-stream"})
        assert got.status_code == 201, got.text
        added[kind] = got.json()["id"]
    assert_error(mod.post(studio.api("/assets?kind=music"),
                          content=b"\x89PNG\r\n\x1a\n" + b"\x00" * 100), 415, "unsupported_type")
    assert_error(mod.post(studio.api("/assets?kind=intro"), content=b"\x00" * 100), 415,
                 "unsupported_type")
    assert_error(mod.post(studio.api("/assets?kind=poster"), content=b"x"), 422,
                 "invalid_kind")
    assert_error(mod.post(studio.api("/assets?kind=music"), content=b""), 422, "empty_file")
    listed = mod.get(studio.api("/assets")).json()["assets"]
    assert {a["kind"] for a in listed} == {"music", "intro"}
    reel = new_reel(studio, items=[{"clip_id": studio.clips[0]}],
                    music_asset=added["music"], intro_asset=added["intro"])
    done = render(studio, reel["id"])
    assert done["state"] == "rendered" and done["output"]["frames"] == 60 + 90
    assert done["manifest"]["music"] == added["music"]


def test_unusable_asset_fails_the_render_with_a_reason(studio: Studio) -> None:
    approve_all(studio)
    mod = studio.moderator
    fake = b"ID3" + b"\x00" * 5000  # looks like an MP3 at first, isn't
    asset = mod.post(studio.api("/assets?kind=music&name=fake.mp3"), content=fake).json()
    reel = new_reel(studio, items=[{"clip_id": studio.clips[0]}], music_asset=asset["id"])
    mod.post(studio.api(f"/reels/{reel['id']}/render"))
    assert render_reel(reel["id"], 1) == "failed"
    failed = mod.get(studio.api(f"/reels/{reel['id']}")).json()
    assert failed["state"] == "failed" and failed["reason"]
    # fixed by choosing no music, rendered again
    mod.patch(studio.api(f"/reels/{reel['id']}"), json={"music_asset": None})
    assert render(studio, reel["id"])["state"] == "rendered"


def test_reconciler_requeues_a_lost_render(studio: Studio, settings: Settings) -> None:
    """The database is the source of truth: a render whose job vanished is queued again."""
    approve_all(studio)
    reel = new_reel(studio, items=[{"clip_id": studio.clips[0]}])
    studio.moderator.post(studio.api(f"/reels/{reel['id']}/render"))
    redis = Redis.from_url(settings.redis_url)
    redis.flushdb()  # the queue is lost

    async def overdue(session: AsyncSession) -> None:
        row = await session.get(Reel, reel["id"])
        assert row is not None and row.deadline_at is not None
        row.deadline_at = row.deadline_at.replace(year=2000)

    run_db(settings, overdue)
    assert reconcile() == 1
    assert redis.exists(f"rq:job:reel-{reel['id']}-v1")
    assert render_reel(reel["id"], 1) == "rendered"
    assert reconcile() == 0


def test_progress_is_reported(studio: Studio) -> None:
    """While rendering, the reel carries a progress fraction for the moderator's bar."""
    approve_all(studio)
    reel = new_reel(studio, items=[{"clip_id": studio.clips[0]}])
    asked = studio.moderator.post(studio.api(f"/reels/{reel['id']}/render")).json()
    assert asked["progress"] == 0.0
    assert re.fullmatch(r"[A-Za-z0-9_-]{8}", asked["slug"])


def test_rejecting_an_approved_clip_takes_it_out_of_reels(studio: Studio,
                                                          settings: Settings) -> None:
    """A moderator's second thoughts act like a withdrawal for the reels that used the clip."""
    approve_all(studio)
    mod = studio.moderator
    reel = new_reel(studio, items=[{"clip_id": c} for c in studio.clips])
    render(studio, reel["id"])
    mod.post(studio.api(f"/reels/{reel['id']}/publish"))
    rejected = mod.post(studio.api(f"/review/{studio.clips[1]}/reject"),
                        json={"reason": "privacy"})
    assert rejected.status_code == 200
    now = mod.get(studio.api(f"/reels/{reel['id']}")).json()
    assert now["state"] == "rendering" and now["public_version"] is None
    assert Redis.from_url(settings.redis_url).exists(f"rq:job:reel-{reel['id']}-v2")
    assert render_reel(reel["id"], 2) == "published"
    stale = [a for a in audit(settings, reel["id"]) if a == "reel.stale"]
    assert stale == ["reel.stale"]


def test_published_reel_carries_a_captions_track(studio: Studio) -> None:
    """/r/{slug}/captions.vtt: the title, then each clip's name and quote timed on the reel,
    member text escaped; the public page and the embed use it; gone when unpublished."""
    approve_all(studio)
    mod = studio.moderator
    quoted = mod.patch(studio.api(f"/review/{studio.clips[1]}"),
                       json={"caption_quote": "<i>mud</i> & rain --> \"fun\""})
    assert quoted.status_code == 200, quoted.text
    reel = new_reel(studio, items=[{"clip_id": studio.clips[0], "trim_in": 6, "trim_out": 84},
                                   {"clip_id": studio.clips[1]}],
                    transition="crossfade", crossfade_frames=15,
                    title_card={"text": "Spring", "color": "#FF6600"})
    done = render(studio, reel["id"])
    assert done["manifest"]["parts"] == [TITLE, 78, 90]
    anonymous = Actor(mod.client)
    assert anonymous.get(f"/r/{done['slug']}/captions.vtt").status_code == 404
    assert mod.post(studio.api(f"/reels/{reel['id']}/publish")).status_code == 200
    vtt = anonymous.get(f"/r/{done['slug']}/captions.vtt")
    assert vtt.status_code == 200
    assert vtt.headers["content-type"] == "text/vtt; charset=utf-8"
    assert vtt.text == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.000 line:2 align:center\nSpring: 100% \"real\"\n\n"
        "00:00:01.500 --> 00:00:04.100 line:2 align:center\nAna O'Neil\n\n"
        "00:00:03.600 --> 00:00:06.600 line:2 align:center\nBudi\n"
        "&lt;i&gt;mud&lt;/i&gt; &amp; rain --&gt; \"fun\"\n")
    for path in ("", "/embed"):
        page = anonymous.get(f"/r/{done['slug']}{path}").text
        assert re.search(r'<track kind="captions" src="[^"]*/r/' + done["slug"]
                         + r'/captions\.vtt" srclang="en" label="Captions" default>', page)
    mod.post(studio.api(f"/reels/{reel['id']}/unpublish"))
    assert anonymous.get(f"/r/{done['slug']}/captions.vtt").status_code == 404
