"""Signals of a recording for the moment finder: momentary loudness (EBU R128) and scene
changes. Read from ffmpeg's stdout line by line (no limit on the recording's length), under
the untrusted-media rules: local file, whitelisted demuxers, a wall-clock limit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from media.run import INPUT_GUARD, local_input, run


def _frames(on_value: Callable[[float, str], None], key: str) -> Callable[[str], None]:
    """Parse `metadata=print` output: a `pts_time:` line, then `key=value` lines."""
    now = [0.0]

    def line(text: str) -> None:
        if text.startswith("frame:"):
            for part in text.split():
                if part.startswith("pts_time:"):
                    now[0] = float(part[9:])
        elif text.startswith(key + "="):
            on_value(now[0], text[len(key) + 1:])

    return line


def momentary_loudness(path: Path, *, timeout: float) -> list[tuple[float, float]]:
    """(seconds, momentary LUFS) of the first audio stream, one value per 0.1 s."""
    found: dict[float, float] = {}

    def take(t: float, value: str) -> None:
        if value not in ("-inf", "nan"):
            found.setdefault(round(t, 1), float(value))

    run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *INPUT_GUARD, "-i",
         local_input(path), "-map", "0:a:0", "-af",
         "ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.M:file=-", "-f", "null",
         "-"], timeout=timeout, keep_stdout=False, on_line=_frames(take, "lavfi.r128.M"))
    return sorted(found.items())


def scene_changes(path: Path, *, timeout: float, threshold: float = 0.3) -> list[float]:
    """When the picture changes (ffmpeg's scene score above `threshold`), in seconds."""
    if not 0 < threshold < 1:
        raise ValueError("the scene threshold is between 0 and 1")
    found: list[float] = []
    run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *INPUT_GUARD, "-i",
         local_input(path), "-map", "0:v:0", "-vf",
         f"scale=160:-2,select='gt(scene\\,{threshold})',"
         "metadata=mode=print:key=lavfi.scene_score:file=-", "-f", "null", "-"],
        timeout=timeout, keep_stdout=False,
        on_line=_frames(lambda t, _: found.append(round(t, 3)), "lavfi.scene_score"))
    return found
