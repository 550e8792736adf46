"""User text drawn as a picture: each line laid out with Pillow (HarfBuzz shaping and
FriBidi through raqm), emoji from Noto Color Emoji, everything else from DejaVu Sans.

ffmpeg 5.1's drawtext has one font and no colour glyphs, so emoji came out as empty boxes.
Here the text becomes an RGBA image that ffmpeg overlays: user text never reaches ffmpeg at
all, not even as a file to read. Lines are wrapped by their measured width.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import emoji
from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FONT_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_PX = 109  # Noto Color Emoji's bitmaps come in this one size; they are scaled to fit
EMOJI_SCALE = 1.1  # an emoji's height against the text's font size
ELLIPSIS = "\u2026"
# Default emoji presentation (Unicode emoji-data, Emoji_Presentation=Yes) below U+1F000:
# drawn in colour even without U+FE0F. Everything from U+1F000 up is drawn in colour anyway.
_PRESENTED = frozenset(
    [0x231A, 0x231B, 0x23E9, 0x23EA, 0x23EB, 0x23EC, 0x23F0, 0x23F3, 0x25FD, 0x25FE, 0x2614,
     0x2615, *range(0x2648, 0x2654), 0x267F, 0x2693, 0x26A1, 0x26AA, 0x26AB, 0x26BD, 0x26BE,
     0x26C4, 0x26C5, 0x26CE, 0x26D4, 0x26EA, 0x26F2, 0x26F3, 0x26F5, 0x26FA, 0x26FD, 0x2705,
     0x270A, 0x270B, 0x2728, 0x274C, 0x274E, 0x2753, 0x2754, 0x2755, 0x2757, 0x2795, 0x2796,
     0x2797, 0x27B0, 0x27BF, 0x2B1B, 0x2B1C, 0x2B50, 0x2B55])
_EMOJI_MARKS = frozenset([0xFE0F, 0x20E3, 0x200D, *range(0x1F3FB, 0x1F400)])


@dataclass(frozen=True)
class Style:
    """How a block of text looks: its font and size, colour, and an optional box behind it
    (RGBA) padded by a third of the size, like drawtext's box."""

    font: Path = FONT
    size: int = 24
    color: tuple[int, int, int, int] = (255, 255, 255, 255)
    box: tuple[int, int, int, int] | None = None
    line_spacing: float = 1.25

    def __post_init__(self) -> None:
        if not 6 <= self.size <= 512:
            raise ValueError(f"a font size is 6-512 px, not {self.size}")

    @property
    def padding(self) -> int:
        return self.size // 3 if self.box else 0


@dataclass(frozen=True)
class Run:
    text: str
    is_emoji: bool


@functools.cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.RAQM)


def _colour_emoji(sequence: str) -> bool:
    """Whether an emoji sequence is drawn from the colour font (not as a text symbol)."""
    points = [ord(c) for c in sequence]
    return any(p >= 0x1F000 or p in _PRESENTED or p in _EMOJI_MARKS for p in points)


def runs(line: str) -> list[Run]:
    """The line cut into text and emoji runs, in logical order."""
    found: list[Run] = []
    at = 0
    for match in emoji.emoji_list(line):
        start, end = match["match_start"], match["match_end"]
        if not _colour_emoji(line[start:end]):
            continue
        if start > at:
            found.append(Run(line[at:start], False))
        if found and found[-1].is_emoji and start == at:
            found[-1] = Run(found[-1].text + line[start:end], True)  # one emoji run
        else:
            found.append(Run(line[start:end], True))
        at = end
    if at < len(line):
        found.append(Run(line[at:], False))
    return found


def _right_to_left(line: str) -> bool:
    """The paragraph direction: that of the first strong character (Unicode's P2 rule)."""
    for ch in line:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def _emoji_width(text: str, size: int) -> int:
    font = _font(EMOJI_FONT, EMOJI_PX)
    return round(font.getlength(text) * size * EMOJI_SCALE / EMOJI_PX)


def measure(line: str, style: Style) -> int:
    """The width of one line in pixels."""
    text_font = _font(style.font, style.size)
    return sum(_emoji_width(r.text, style.size) if r.is_emoji else
               round(text_font.getlength(r.text)) for r in runs(line))


def layout(text: str, width: int, style: Style, max_lines: int = 3) -> list[str]:
    """Break `text` into lines no wider than `width` px, at spaces (inside a word only when
    the word alone is too wide); past `max_lines` the last line ends with an ellipsis."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if measure(candidate, style) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while measure(current, style) > width and len(current) > 1:  # a word wider than a line
            cut = len(current) - 1
            while cut > 1 and measure(current[:cut], style) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and measure(last + ELLIPSIS, style) > width:
            last = last[:-1]
        lines = [*lines[:max_lines - 1], last.rstrip() + ELLIPSIS]
    return lines


def _draw_line(image: Image.Image, line: str, top: int, left: int, width: int,
               style: Style, centred: bool) -> None:
    text_font = _font(style.font, style.size)
    ascent, descent = text_font.getmetrics()
    pieces = runs(line)
    rtl = _right_to_left(line)
    if centred:
        left += (width - measure(line, style)) // 2
        width = measure(line, style)
    x = left + width if rtl else left
    for piece in pieces:
        if piece.is_emoji:
            w = _emoji_width(piece.text, style.size)
            glyphs = _emoji_picture(piece.text)
            h = round(glyphs.height * w / max(glyphs.width, 1))
            x0 = x - w if rtl else x
            y0 = top + (ascent + descent - h) // 2
            image.alpha_composite(glyphs.resize((max(w, 1), max(h, 1)), Image.Resampling.LANCZOS),
                                  (x0, max(y0, 0)))
        else:
            w = round(text_font.getlength(piece.text))
            x0 = x - w if rtl else x
            ImageDraw.Draw(image).text((x0, top), piece.text, font=text_font,
                                       fill=style.color)
        x = x - w if rtl else x + w


@functools.lru_cache(maxsize=256)
def _emoji_picture(text: str) -> Image.Image:
    """An emoji run at the colour font's own size, cropped to its advance."""
    font = _font(EMOJI_FONT, EMOJI_PX)
    width = max(round(font.getlength(text)), 1)
    ascent, descent = font.getmetrics()
    picture = Image.new("RGBA", (width, ascent + descent), (0, 0, 0, 0))
    ImageDraw.Draw(picture).text((0, 0), text, font=font, embedded_color=True)
    return picture


def picture(lines: list[str], style: Style, *, centred: bool = False) -> Image.Image:
    """The lines drawn on a transparent picture (on the box, if the style has one). Each
    line is centred, or aligned to its own direction: left for left-to-right, right for
    right-to-left."""
    step = round(style.size * style.line_spacing)
    widths = [measure(line, style) for line in lines] or [0]
    pad = style.padding
    ascent, descent = _font(style.font, style.size).getmetrics()
    inner_w = max(widths)
    inner_h = step * (len(lines) - 1) + ascent + descent if lines else 0
    image = Image.new("RGBA", (max(inner_w + 2 * pad, 1), max(inner_h + 2 * pad, 1)),
                      style.box or (0, 0, 0, 0))
    for n, line in enumerate(lines):
        _draw_line(image, line, pad + n * step, pad, inner_w, style, centred)
    return image


def write(path: Path, lines: list[str], style: Style, *,
          centred: bool = False) -> tuple[int, int]:
    """Save the lines' picture as a PNG at `path`; its size in pixels."""
    image = picture(lines, style, centred=centred)
    image.save(path, format="PNG")
    return image.size
