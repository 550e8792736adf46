"""After the last byte: ingest checks the story rules, then makes the web rendition, poster and
filmstrip, or records a reason the member can act on."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Clip
from service.settings import Settings
from service.storage import ObjectNotFound, open_store
from service.storage.keys import clip_rendition, clip_source
from tests import media_files
from tests.actors import Actor
from tests.conftest import World, run_db, settings_env
from tests.uploads.conftest import create, upload_all
from workers.context import JobContext
from workers.ingest import ingest_clip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("probe-media")
    story = media_files.story_mp4(folder / "story.mp4")
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(story.read_bytes()[: story.stat().st_size // 2])
    return {
        "story": story,
        "long": media_files.story_mp4(folder / "long.mp4", seconds=6),
        "webm": media_files.webm_without_duration(folder / "recorded.webm"),
        "audio_only": media_files.audio_only_mp4(folder / "voice.mp4"),
        "truncated": truncated,
    }


@pytest.fixture
def member(world: World, settings: Settings, jobs_here: JobContext) -> tuple[Actor, str]:
    owner = world.admin()
    slug = world.community(owner)
    return world.join(owner, slug), slug


def clip_row(settings: Settings) -> Clip:
    async def work(session: AsyncSession) -> Clip:
        clip = await session.scalar(select(Clip))
        assert isinstance(clip, Clip)
        return clip

    return run_db(settings, work)


def test_ingest_runs_in_a_worker(member: tuple[Actor, str],
                                                   files: dict[str, Path],
                                                   settings: Settings) -> None:
    """The job queued at the last byte runs in `kumpul worker`: facts, rendition, review."""
    actor, slug = member
    upload_all(actor, slug, files["story"].read_bytes())
    done = subprocess.run([sys.executable, "-m", "service.cli", "worker", "ingest", "--burst"],
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    clip = clip_row(settings)
    assert clip.state == "ready_for_review" and clip.reason is None and clip.version == 1
    assert clip.facts["video"]["codec"] == "h264"
    assert clip.facts["video"]["display_size"] == [320, 240]
    assert abs(clip.facts["duration"] - 2.0) < 0.1
    assert clip.sha256 == hashlib.sha256(files["story"].read_bytes()).hexdigest()


def test_browser_webm_is_measured(member: tuple[Actor, str], files: dict[str, Path],
                                  settings: Settings) -> None:
    actor, slug = member
    upload_all(actor, slug, files["webm"].read_bytes(), filename="recorded.webm")
    assert ingest_clip(clip_row(settings).id) == "ready_for_review"
    facts = clip_row(settings).facts
    assert facts["duration_measured"] and abs(facts["duration"] - 2.0) < 0.15
    assert facts["video"]["codec"] == "vp8" and facts["audio"]["codec"] == "opus"


@pytest.mark.parametrize(("name", "reason", "hint"), [
    ("audio_only", "We couldn't find a video track in this file.", "as a video"),
    ("truncated", "We couldn't read this file as a video.", "MP4, MOV or WebM"),
])
def test_unusable_files_become_invalid(member: tuple[Actor, str], files: dict[str, Path],
                                       settings: Settings, name: str, reason: str,
                                       hint: str) -> None:
    actor, slug = member
    upload_all(actor, slug, files[name].read_bytes())
    assert ingest_clip(clip_row(settings).id) == "invalid"
    clip = clip_row(settings)
    assert clip.reason == reason and hint in (clip.hint or "")
    mine = actor.get(f"/api/communities/{slug}/clips/mine").json()["clips"][0]
    assert mine["state"] == "invalid" and mine["reason"] == reason


def test_too_long_for_the_prompt(world: World, member: tuple[Actor, str],
                                 files: dict[str, Path], settings: Settings) -> None:
    """A prompt's own length limit is applied, and the reason says both lengths."""
    owner = world.admin("Prompt Owner")
    host_slug = world.community(owner, "Hosted")
    host = world.join(owner, host_slug, "host")
    made = host.post(f"/api/communities/{host_slug}/prompts",
                     json={"question": "Your best ride in 5 seconds?", "max_seconds": 5})
    assert made.status_code == 201, made.text
    rider = world.join(owner, host_slug, "member", "Rider")
    upload_all(rider, host_slug, files["long"].read_bytes(), prompt=made.json()["id"])
    assert ingest_clip(clip_row(settings).id) == "invalid"
    clip = clip_row(settings)
    assert clip.reason_args == {"length_seconds": 6, "max_seconds": 5}  # kept apart from words
    told = rider.get(f"/api/communities/{host_slug}/clips/mine").json()["clips"][0]
    assert told["reason"] == "This video is 6 seconds long; stories can be at most 5 seconds."
    assert told["hint"] == "Trim it and try again."
    rider.patch("/api/me", json={"language": "id"})
    told = rider.get(f"/api/communities/{host_slug}/clips/mine").json()["clips"][0]
    assert told["reason"] == "Panjang video ini 6 detik; cerita paling lama 5 detik."


def test_ingest_is_idempotent(member: tuple[Actor, str], files: dict[str, Path],
                             settings: Settings) -> None:
    actor, slug = member
    upload_all(actor, slug, files["story"].read_bytes())
    clip_id = clip_row(settings).id
    assert ingest_clip(clip_id) == "ready_for_review"
    assert ingest_clip(clip_id) == "skipped"
    assert ingest_clip("no-such-clip") == "skipped"


def test_trouble_ends_failed_and_a_retry_recovers(member: tuple[Actor, str],
                                                  files: dict[str, Path],
                                                  settings: Settings) -> None:
    """An error that is not the member's (here: the source went missing) ends `failed` with a
    reassuring reason once retries are spent; a retry after the fix gets to review."""
    actor, slug = member
    upload_all(actor, slug, files["story"].read_bytes())
    clip_id = clip_row(settings).id
    store = open_store(settings)
    source = b"".join(store.get(clip_source(clip_id)))
    store.delete(clip_source(clip_id))
    with pytest.raises(ObjectNotFound):
        ingest_clip(clip_id)  # run inline: no retries left
    failed = clip_row(settings)
    assert failed.state == "failed"
    assert failed.reason == "Something went wrong preparing this video."
    assert list(store.list(f"clips/{clip_id}/")) == []
    store.put(clip_source(clip_id), io.BytesIO(source))
    assert ingest_clip(clip_id) == "ready_for_review"
    assert clip_row(settings).reason is None


def test_the_part_the_member_kept_is_what_is_prepared(world: World, member: tuple[Actor, str],
                                                      tmp_path: Path, settings: Settings) -> None:
    """A 6 s video for a 5 s prompt, sent with the part to keep (2.5 s to 6 s): accepted, and
    the rendition is that part (3.5 s, starting in the blue); the same video without a trim is
    refused as too long, and a trim longer than the prompt allows is refused at creation."""
    owner = world.admin("Trim Owner")
    host_slug = world.community(owner, "Trimmed")
    host = world.join(owner, host_slug, "host")
    prompt = host.post(f"/api/communities/{host_slug}/prompts",
                       json={"question": "Five seconds on your bike?", "max_seconds": 5}).json()
    rider = world.join(owner, host_slug, "member", "Rider")
    data = media_files.colour_story_mp4(tmp_path / "colours.mp4").read_bytes()

    too_long = create(rider, host_slug, len(data), prompt=prompt["id"], keep_from="0",
                      keep_to="5.9")
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "invalid_trim"
    backwards = create(rider, host_slug, len(data), keep_from="4", keep_to="2")
    assert backwards.status_code == 422 and backwards.json()["error"]["code"] == "invalid_trim"

    upload_all(rider, host_slug, data, prompt=prompt["id"], keep_from="2.5", keep_to="6.0")
    clip = clip_row(settings)
    assert (clip.keep_from_ms, clip.keep_to_ms) == (2500, 6000)
    assert ingest_clip(clip.id) == "ready_for_review"
    clip = clip_row(settings)
    assert clip.rendition["duration"] == pytest.approx(3.5, abs=0.05)
    web = tmp_path / "web.mp4"
    web.write_bytes(b"".join(open_store(settings).get(clip_rendition(clip.id, 1, "web.mp4"))))
    first = media_files.frame_rgb(web, 0)
    assert first[2] > 200 and first[0] < 40  # blue: the source at 2.5 s
    mine = rider.get(f"/api/communities/{host_slug}/clips/mine").json()["clips"][0]
    assert mine["duration"] == pytest.approx(3.5, abs=0.05) and mine["media"]["web"]

    whole = upload_all(rider, host_slug, data, prompt=prompt["id"])
    whole_id = next(c["id"] for c in rider.get(f"/api/communities/{host_slug}/clips/mine")
                    .json()["clips"] if c["state"] == "uploaded")
    assert whole and ingest_clip(whole_id) == "invalid"
    refused = next(c for c in rider.get(f"/api/communities/{host_slug}/clips/mine").json()["clips"]
                   if c["id"] == whole_id)
    assert refused["reason"] == "This video is 6 seconds long; stories can be at most 5 seconds."
