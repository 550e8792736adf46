"""A community with stories ready for moderators: members upload through tus, ingest runs
(inline, like a worker would), so every clip has a real rendition."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from service.settings import Settings
from tests import media_files
from tests.actors import Actor
from tests.conftest import World
from tests.uploads.conftest import upload_all
from workers.context import JobContext
from workers.ingest import ingest_clip


@dataclass
class Studio:
    slug: str
    owner: Actor
    moderator: Actor
    members: list[Actor]
    clips: list[str] = field(default_factory=list)

    def api(self, path: str = "") -> str:
        return f"/api/communities/{self.slug}{path}"


def share(actor: Actor, slug: str, source: Path, **meta: object) -> str:
    """The member shares a story (`meta`: more upload metadata, e.g. its prompt); ingest
    makes its rendition. Returns the clip id."""
    upload_all(actor, slug, source.read_bytes(), 3, **meta)
    clip_id = str(actor.get(f"/api/communities/{slug}/clips/mine").json()["clips"][0]["id"])
    assert ingest_clip(clip_id) == "ready_for_review"
    return clip_id


@pytest.fixture(scope="session")
def story_sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("studio-media")
    return [media_files.story_mp4(folder / "portrait.mp4", 3, "360x640"),
            media_files.story_mp4(folder / "landscape.mp4", 3, "640x360")]


@pytest.fixture
def studio(world: World, settings: Settings, story_sources: list[Path],
           jobs_here: JobContext) -> Studio:
    """An owner, a moderator and two members, each member with one story awaiting review."""
    owner = world.admin("Olu Owner")
    slug = world.community(owner)
    moderator = world.join(owner, slug, "moderator", "Mo Moderator")
    members = [world.join(owner, slug, "member", name) for name in ("Ana O'Neil", "Budi")]
    made = Studio(slug, owner, moderator, members)
    for actor, source in zip(members, story_sources, strict=True):
        made.clips.append(share(actor, slug, source))
    return made
