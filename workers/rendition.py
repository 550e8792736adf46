"""A source file in, a web rendition (with poster and filmstrip) stored: the part of ingest
that knows nothing of clips, shared by member stories and live-session recordings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media.normalise import RenditionSpec, Stills, normalise
from media.probe import MediaInfo, probe
from media.run import MediaError, MediaTimeout
from service.domain.story_rules import Keep, Refusal, StoryLimits, refuse_media
from service.storage import ObjectStore
from service.storage.keys import RENDITION_FILES, file

CONTENT_TYPES = {"web.mp4": "video/mp4", "poster.jpg": "image/jpeg",
                 "filmstrip.jpg": "image/jpeg"}
UNREADABLE = Refusal("unreadable", "We couldn't read this file as a video.",
                     "Send an MP4, MOV or WebM video.")
KEEP_PAST_THE_END = Refusal("keep_past_the_end",
                            "The part you chose starts after the end of this video.",
                            "Choose the part to keep again and send it once more.")
TOO_SLOW = Refusal("probe_timeout", "This file took too long to read.",
                   "Export it again as an MP4 and try again.")


@dataclass(frozen=True)
class Rendition:
    facts: dict[str, Any]      # of the source
    rendition: dict[str, Any]  # of the output, with file sizes


def check(source: Path, limits: StoryLimits, timeout: float,
          keep: Keep | None = None) -> tuple[MediaInfo | None, Refusal | None]:
    """Probe under the untrusted-media rules and apply the limits. With the part the member
    chose to `keep`, the facts returned (and checked) are those of that part."""
    try:
        info = probe(source, timeout=timeout)
    except MediaTimeout:
        return None, TOO_SLOW
    except MediaError:
        return None, UNREADABLE
    if keep is not None:
        if keep.start >= info.duration - 0.1:
            return info, KEEP_PAST_THE_END
        info = dataclasses.replace(info, duration=min(info.duration, keep.end) - keep.start)
    return info, refuse_media(info, limits)


def render(store: ObjectStore, source: Path, info: MediaInfo, *, spec: RenditionSpec,
           max_seconds: float, timeout: float, folder: str,
           on_progress: Callable[[float], None] | None = None, start: float = 0) -> Rendition:
    """Normalise (from `start` seconds in, when the member kept a part), make the stills in
    the same pass, and store all three in `folder`."""
    scratch = source.parent
    outputs = {name: scratch / name for name in RENDITION_FILES}
    normalise(source, outputs["web.mp4"], info, spec, timeout=timeout, max_seconds=max_seconds,
              on_progress=on_progress, start=start,
              stills=Stills(poster=outputs["poster.jpg"], filmstrip=outputs["filmstrip.jpg"]))
    made = probe(outputs["web.mp4"], timeout=timeout)
    for name in RENDITION_FILES:
        store.put_file(file(folder, name), outputs[name], CONTENT_TYPES[name])
    return Rendition(info.to_dict(), {**made.to_dict(), "files": {
        name: outputs[name].stat().st_size for name in RENDITION_FILES}})
