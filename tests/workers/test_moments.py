"""Highlights from a synthetic session: a recording with a loud burst at a known time, and
reactions and chat clustered at another. The finder proposes both; an accepted moment becomes
an approved clip cut frame-exact from the recording; finding again makes no duplicates."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import AuditEvent, Clip, LiveMoment, LiveSession
from service.domain import live
from service.settings import Settings
from service.storage import open_store
from service.storage.keys import clip_rendition, live_recording, live_rendition
from tests import media_files
from tests.actors import Actor
from tests.conftest import World, run_db
from tests.service.test_error_shape import assert_error
from workers.context import JobContext
from workers.ingest import ingest_clip
from workers.live import render_recording
from workers.moments import find_moments

BURST = (12.0, 13.0)    # loud
CLUSTER = (30.0, 34.0)  # 30 reactions and 8 messages
W, H = 320, 240


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s of VP8/Opus like the live recorder writes: a moving picture, a quiet tone with a
    loud burst."""
    path = tmp_path_factory.mktemp("session") / "recording.webm"
    media_files.ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r=30:d=40",
        "-f", "lavfi", "-i",
        f"sine=f=300:d=40,volume='if(between(t,{BURST[0]},{BURST[1]}),1,0.03)':eval=frame",
        "-c:v", "libvpx", "-deadline", "realtime", "-b:v", "1M", "-c:a", "libopus",
        str(path))
    return path


@dataclass
class Session:
    id: str
    slug: str
    owner: Actor
    host: Actor
    moderator: Actor
    member: Actor

    @property
    def api(self) -> str:
        return f"/api/communities/{self.slug}/live/{self.id}/moments"


def add_events(settings: Settings, session_id: str, user_id: int, kind: str,
               times: list[float]) -> None:
    async def work(session: AsyncSession) -> None:
        for t in times:
            await live.add_event(session, session_id, kind, user_id, "🎉", int(t * 1000))

    run_db(settings, work)


def spread(count: int, span: tuple[float, float]) -> list[float]:
    return [span[0] + (span[1] - span[0]) * i / count for i in range(count)]


@pytest.fixture
def ended(world: World, settings: Settings, recording: Path,
          jobs_here: JobContext) -> Iterator[Session]:
    """A session that went live and ended; its recording stored and rendered, the room's
    reactions and chat on its timeline, and the moment finder run."""
    owner = world.admin("Olu Owner")
    slug = world.community(owner)
    host = world.join(owner, slug, "host", "Hana Host")
    moderator = world.join(owner, slug, "moderator", "Mo Moderator")
    member = world.join(owner, slug, "member", "Ana Member")
    made = host.post(f"/api/communities/{slug}/live", json={"title": "Tasting night"})
    assert made.status_code == 201, made.text
    session_id = made.json()["id"]

    async def run_it(session: AsyncSession) -> None:
        await live.go_live(session, session_id)
        row = await session.get(LiveSession, session_id)
        assert row is not None
        await live.end(session, row, host.user_id)

    run_db(settings, run_it)
    key = live_recording(session_id)
    open_store(settings).put_file(key, recording, "video/webm")
    run_db(settings, lambda session: live.recording_stored(session, session_id, key))
    assert render_recording(session_id) == "ready"
    assert member.user_id is not None
    add_events(settings, session_id, member.user_id, "reaction", spread(30, CLUSTER))
    add_events(settings, session_id, member.user_id, "chat", spread(8, CLUSTER))
    assert find_moments(session_id) == "2 proposed"
    yield Session(session_id, slug, owner, host, moderator, member)


def centred(span: tuple[float, float], seconds: float = 8.0) -> tuple[float, float]:
    """The window the rules make of a short event: the shortest length, around it."""
    middle = (span[0] + span[1]) / 2
    return middle - seconds / 2, middle + seconds / 2


def near(moment: dict[str, object], window: tuple[float, float]) -> bool:
    start, end = float(moment["start_ms"]) / 1000, float(moment["end_ms"]) / 1000  # type: ignore[arg-type]
    return abs(start - window[0]) <= 1 and abs(end - window[1]) <= 1


def test_the_finder_proposes_the_burst_and_the_cluster_with_reasons(ended: Session) -> None:
    page = ended.moderator.get(ended.api)
    assert page.status_code == 200, page.text
    data = page.json()
    assert data["finder"]["state"] == "ready"
    assert data["recording"]["duration"] == pytest.approx(40, abs=0.1)
    moments = data["moments"]
    assert len(moments) == 2
    loud = next(m for m in moments if near(m, centred(BURST)))
    busy = next(m for m in moments if near(m, centred(CLUSTER)))
    assert "loud moment" in loud["why"]
    assert busy["why"].startswith("30 reactions and 8 messages in 4 s"), busy["why"]
    assert {loud["state"], busy["state"]} == {"proposed"}
    activity = data["activity"]  # the timeline graph's data, per second
    assert len(activity["reactions"]) in (40, 41)  # the audio may end a little late
    assert sum(activity["reactions"][30:34]) == 30 and sum(activity["messages"]) == 8
    assert max(range(40), key=lambda i: activity["loudness"][i]) in (12, 13)
    assert data["terms"]["version"] == live.TERMS_VERSION


def gray_frames(path: Path, count: int, start: float | None = None) -> list[bytes]:
    seek = ["-ss", f"{start:.6f}"] if start is not None else []
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", *seek, "-i", str(path),
                          "-frames:v", str(count), "-vf", f"scale={W}:{H}", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True,
                         timeout=60).stdout
    n = W * H
    return [raw[i * n:(i + 1) * n] for i in range(len(raw) // n)]


def difference(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def fetch(settings: Settings, key: str, path: Path) -> Path:
    with path.open("wb") as fh:
        for chunk in open_store(settings).get(key):
            fh.write(chunk)
    return path


def test_an_accepted_moment_becomes_an_approved_clip_cut_frame_exact(
        ended: Session, settings: Settings, tmp_path: Path) -> None:
    moments = ended.moderator.get(ended.api).json()["moments"]
    loud = next(m for m in moments if near(m, centred(BURST)))
    start_ms, end_ms = 9000, 17500  # adjusted by the moderator
    accepted = ended.moderator.post(f"{ended.api}/{loud['id']}/accept",
                                    json={"start_ms": start_ms, "end_ms": end_ms})
    assert accepted.status_code == 201, accepted.text
    clip = accepted.json()["clip"]
    assert accepted.json()["state"] == "accepted" and clip["state"] == "uploaded"
    again = ended.moderator.post(f"{ended.api}/{loud['id']}/accept")
    assert again.status_code == 200 and again.json()["clip"]["id"] == clip["id"]

    assert ingest_clip(clip["id"]) == "approved"  # the moderator's acceptance was the review

    async def row(session: AsyncSession) -> Clip:
        found = await session.get(Clip, clip["id"])
        assert found is not None
        return found

    made = run_db(settings, row)
    assert (made.source, made.consent_basis, made.member_id) == (
        "live", "session_terms", ended.host.user_id)
    assert (made.release_version, made.release_sha256) == (live.TERMS_VERSION,
                                                          live.TERMS_SHA256)
    assert made.rendition["duration"] == pytest.approx(8.5, abs=0.05)

    recording = fetch(settings, f"{live_rendition(ended.id)}/web.mp4", tmp_path / "rec.mp4")
    cut = fetch(settings, clip_rendition(clip["id"], made.version, "web.mp4"),
                tmp_path / "clip.mp4")
    packets = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                              "-count_packets", "-show_entries", "stream=nb_read_packets",
                              "-of", "csv=p=0", str(cut)], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    assert int(packets) == 255  # 8.5 s at 30 fps, to the frame
    (first,) = gray_frames(cut, 1)
    around = gray_frames(recording, 5, start=start_ms / 1000 - 2 / 30)  # frames -2 .. +2
    scores = [difference(first, frame) for frame in around]
    assert min(range(5), key=lambda i: scores[i]) == 2, scores  # the frame at 9.000 s
    assert scores[2] < 2.0, scores

    # the review queue shows the consent basis; a reel manifest will carry it
    listed = ended.moderator.get(f"/api/communities/{ended.slug}/review?state=approved"
                                 "&source=live").json()["clips"]
    assert [c["id"] for c in listed] == [clip["id"]]
    assert listed[0]["consent"]["basis"] == "session_terms"
    assert listed[0]["member"]["display_name"] == "Hana Host"

    async def audit(session: AsyncSession) -> list[str]:
        rows = await session.scalars(select(AuditEvent.action).where(
            AuditEvent.subject_id.in_([ended.id, clip["id"]])).order_by(AuditEvent.id))
        return list(rows)

    actions = run_db(settings, audit)
    for action in ("live.started", "moment.accepted", "consent.session_terms",
                   "clip.approved"):
        assert action in actions


def moment_rows(settings: Settings, session_id: str) -> list[tuple[int, int, str]]:
    async def work(session: AsyncSession) -> list[tuple[int, int, str]]:
        rows = await session.execute(select(
            LiveMoment.start_ms, LiveMoment.end_ms, LiveMoment.state).where(
            LiveMoment.session_id == session_id).order_by(LiveMoment.start_ms))
        return [tuple(r) for r in rows]  # type: ignore[misc]

    return run_db(settings, work)


def test_finding_again_is_idempotent_and_keeps_decisions(ended: Session,
                                                        settings: Settings) -> None:
    moments = ended.moderator.get(ended.api).json()["moments"]
    loud = next(m for m in moments if near(m, centred(BURST)))
    busy = next(m for m in moments if near(m, centred(CLUSTER)))
    accepted = ended.moderator.post(f"{ended.api}/{busy['id']}/accept")
    assert accepted.status_code == 201
    assert ended.moderator.post(f"{ended.api}/{loud['id']}/discard").status_code == 200
    before = moment_rows(settings, ended.id)

    again = ended.moderator.post(f"{ended.api}/find")
    assert again.status_code == 202 and again.json()["finder"]["state"] == "finding"
    assert find_moments(ended.id) == "0 proposed"  # both windows are decided
    assert moment_rows(settings, ended.id) == before

    assert ended.member.user_id is not None  # new reactions: a new moment, nothing doubled
    add_events(ended_settings := settings, ended.id, ended.member.user_id, "reaction",
               spread(40, (21.0, 23.0)))
    assert find_moments(ended.id) == "1 proposed"
    assert find_moments(ended.id) == "1 proposed"  # and again: replaced, not added
    rows = moment_rows(ended_settings, ended.id)
    assert [state for *_, state in rows] == ["discarded", "proposed", "accepted"]

    async def clips(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(Clip).where(
            Clip.source == "live")) or 0)

    assert run_db(settings, clips) == 1

    restored = ended.moderator.post(f"{ended.api}/{loud['id']}/restore")
    assert restored.status_code == 200 and restored.json()["state"] == "proposed"
    refused = ended.moderator.post(f"{ended.api}/{busy['id']}/discard")
    assert_error(refused, 409, "invalid_transition")


def test_bad_bounds_and_roles_are_refused(ended: Session) -> None:
    moment = ended.moderator.get(ended.api).json()["moments"][0]
    accept = f"{ended.api}/{moment['id']}/accept"
    for body, code in (({"start_ms": 5000, "end_ms": 4000}, "invalid_bounds"),
                       ({"start_ms": -1}, "invalid_bounds"),
                       ({"end_ms": 999_999}, "invalid_bounds"),
                       ({"start_ms": "soon"}, "invalid_bounds"),
                       ({"start_ms": 1e308}, "invalid_bounds"),
                       ({"start_ms": 5000, "end_ms": 5500}, "moment_too_short")):
        assert_error(ended.moderator.post(accept, json=body), 422, code)
    assert_error(ended.moderator.post(f"{ended.api}/99999/accept"), 404, "moment_not_found")
    assert_error(ended.moderator.post(f"{ended.api}/x/accept"), 400, "invalid_parameter")
    for outsider in (ended.member, ended.host):  # hosts don't moderate
        assert_error(outsider.get(ended.api), 403, "role_forbidden")
        assert_error(outsider.post(accept), 403, "role_forbidden")
    assert ended.moderator.get(ended.api).json()["moments"][0]["state"] == "proposed"


def test_a_session_not_ended_has_no_highlights(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    made = owner.post(f"/api/communities/{slug}/live", json={"title": "Later"})
    base = f"/api/communities/{slug}/live/{made.json()['id']}/moments"
    assert owner.get(base).json()["moments"] == []
    assert_error(owner.post(f"{base}/find"), 409, "session_not_ended")
    assert_error(owner.get(f"/api/communities/{slug}/live/nope/moments"), 404,
                 "session_not_found")
