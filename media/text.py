"""User text on video. It never enters filter syntax: it is written to a file that drawtext
reads with expansion off, so quotes, colons, percent signs, backslashes and brackets are
drawn as they are."""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FONT_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
MAX_CHARS = 120


def clean(text: str, limit: int = MAX_CHARS) -> str:
    """One line of displayable text: NFC, no control or format characters except the
    bidirectional marks, whitespace collapsed, at most `limit` characters."""
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


def text_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def draw(stream: Any, textfile: Path, *, size: int, x: str, y: str, font: Path = FONT,
         color: str = "white", box: str | None = None) -> Any:
    """drawtext reading `textfile` literally (expansion=none)."""
    options: dict[str, Any] = {"fontfile": str(font), "textfile": str(textfile),
                               "expansion": "none", "fontsize": size, "fontcolor": color,
                               "x": x, "y": y, "text_shaping": 1}
    if box:
        options.update(box=1, boxcolor=box, boxborderw=size // 3)
    return stream.filter("drawtext", **options)


def wrap(text: str, width_px: int, size: int, max_lines: int = 3) -> str:
    """Break `text` into lines that fit `width_px` at font `size` (an estimate: DejaVu Sans
    averages about 0.6 em per character); the last line is shortened with an ellipsis."""
    per_line = max(int(width_px / (size * 0.6)), 8)
    lines = textwrap.wrap(text, per_line, break_long_words=True, break_on_hyphens=False)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: per_line - 1].rstrip() + "\u2026"
    return "\n".join(lines)


def lower_third(stream: Any, caption: Caption, folder: Path, width: int, height: int) -> Any:
    """The caption over the lower part of the frame, scaled to the canvas."""
    unit = max(min(width, height) // 24, 12)
    margin = unit
    bottom = height - margin * 4
    if caption.quote:
        text = wrap(f"\u201c{caption.quote}\u201d", width - margin * 3, unit)
        quote = text_file(folder, "quote.txt", text)
        stream = draw(stream, quote, size=unit, x=str(margin), y=f"{bottom}-th",
                      box="black@0.45")
        bottom -= int(unit * 1.25 * (text.count("\n") + 1)) + unit * 2
    if caption.name:
        name = text_file(folder, "name.txt", wrap(caption.name, width - margin * 3,
                                                  int(unit * 1.3), max_lines=1))
        stream = draw(stream, name, size=int(unit * 1.3), x=str(margin), y=f"{bottom}-th",
                      font=FONT_BOLD, box="black@0.55")
    return stream
