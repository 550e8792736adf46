"""A published reel's captions as WebVTT: the title while the reel opens, then each clip's
lower third (the member's name and quote) for as long as the clip is on screen.

The text is member text, so it is escaped by WebVTT's rules: `&`, `<` and `>` become
character references (so no tag, timestamp or `-->` can be smuggled into a cue), line breaks
and control characters become spaces (a blank line would end the cue)."""

from __future__ import annotations

import re

from service.domain.composition import Manifest
from service.domain.trims import FPS

TITLE_FRAMES = 2 * FPS  # a title card's length, and the title cue's without one
# cues sit two lines below the top of the picture: clear of the player's controls at the
# bottom, of the lower third the render draws itself, and of an embed's attribution link
CUE_SETTINGS = "line:2 align:center"
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def cue_text(text: str) -> str:
    """One line of member text, safe as WebVTT cue text."""
    flat = " ".join(_CONTROLS.sub(" ", text).split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def timestamp(frame: int) -> str:
    ms = round(frame * 1000 / FPS)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _parts(manifest: Manifest) -> list[int] | None:
    """Frames of each part in order (title card, intro, clips, outro): as the render
    recorded them, or worked out for renders that did not (None when an intro or outro of
    unknown length is in the way)."""
    recorded = manifest.rendered.get("parts")
    if isinstance(recorded, list) and all(isinstance(n, int) for n in recorded):
        return list(recorded)
    if manifest.intro or manifest.outro:
        return None
    return ([TITLE_FRAMES] if manifest.title_card else []) + [c.frames for c in manifest.clips]


def webvtt(manifest: Manifest, title: str) -> str:
    """The captions file of one render of a reel."""
    cues: list[tuple[int, int, list[str]]] = []
    parts = _parts(manifest)
    total = manifest.rendered.get("frames")
    if parts is not None:
        starts, at = [], 0
        for frames in parts:
            starts.append(at)
            at += frames - manifest.overlap
        total = total if isinstance(total, int) else at + manifest.overlap
        lead = 1 if manifest.title_card else 0
        first_clip = lead + (1 if manifest.intro else 0)
        title_end = parts[0] if manifest.title_card else min(TITLE_FRAMES, total)
        cues.append((0, title_end, [title]))
        for n, clip in enumerate(manifest.clips):
            if clip.caption is None:
                continue
            index = first_clip + n
            lines = [clip.caption.get("name", ""), clip.caption.get("quote", "")]
            cues.append((starts[index], starts[index] + parts[index], lines))
    elif isinstance(total, int):
        cues.append((0, min(TITLE_FRAMES, total), [title]))
    out = ["WEBVTT", ""]
    for start, end, lines in cues:
        shown = [cue_text(line) for line in lines if cue_text(line)]
        if not shown or end <= start:
            continue
        out += [f"{timestamp(start)} --> {timestamp(end)} {CUE_SETTINGS}", *shown, ""]
    return "\n".join(out)
