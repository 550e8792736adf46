"""User text on video: cleaned to one line of displayable characters, laid out and drawn as
a picture (`media.lettering`: shaping, right-to-left text and colour emoji), then overlaid.
User text never enters filter syntax, nor any file ffmpeg reads as text."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from media.lettering import FONT, FONT_BOLD, Style, layout, write
from media.run import local_input

MAX_CHARS = 120
QUOTE_BOX = (0, 0, 0, 115)  # black at 45 %
NAME_BOX = (0, 0, 0, 140)  # black at 55 %


def clean(text: str, limit: int = MAX_CHARS) -> str:
    """One line of displayable text: NFC, no control or format characters except the
    bidirectional marks and those emoji need (ZWJ, VS16), whitespace collapsed, at most
    `limit` characters."""
    text = unicodedata.normalize("NFC", text)
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace():
            kept.append(" ")
        elif category == "Cc" or (category == "Cf" and ch not in "\u200d\u200e\u200f\ufe0f"):
            continue
        else:
            kept.append(ch)
    return " ".join("".join(kept).split())[:limit]


@dataclass(frozen=True)
class Caption:
    """A lower third: the member's display name and an optional quote line."""

    name: str
    quote: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", clean(self.name, 60))
        object.__setattr__(self, "quote", clean(self.quote, MAX_CHARS))

    def __bool__(self) -> bool:
        return bool(self.name or self.quote)


def overlay(stream: Any, picture: Path, *, x: str, y: str) -> Any:
    """Lay a picture made by `media.lettering` (a PNG of ours) over the video; it stays
    for the whole video."""
    still = ffmpeg.input(local_input(picture), f="png_pipe", protocol_whitelist="file")
    return stream.overlay(still, x=x, y=y)


def lower_third(stream: Any, caption: Caption, folder: Path, width: int, height: int) -> Any:
    """The caption over the lower part of the frame, scaled to the canvas."""
    unit = max(min(width, height) // 24, 12)
    margin = unit
    bottom = height - margin * 4
    if caption.quote:
        style = Style(FONT, unit, box=QUOTE_BOX)
        lines = layout(f"\u201c{caption.quote}\u201d", width - margin * 3, style)
        _, h = write(folder / "quote.png", lines, style)
        # the text's top left where drawtext put it, its box around it
        stream = overlay(stream, folder / "quote.png", x=str(margin - style.padding),
                         y=str(bottom - h + style.padding))
        bottom -= int(unit * 1.25 * len(lines)) + unit * 2
    if caption.name:
        style = Style(FONT_BOLD, int(unit * 1.3), box=NAME_BOX)
        lines = layout(caption.name, width - margin * 3, style, max_lines=1)
        _, h = write(folder / "name.png", lines, style)
        stream = overlay(stream, folder / "name.png", x=str(margin - style.padding),
                         y=str(bottom - h + style.padding))
    return stream
