"""User text as pictures: emoji in colour (never the missing-glyph box), text and emoji runs,
lines wrapped by their measured width, right-to-left lines set from the right."""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

from media.canvas import canvas
from media.lettering import FONT_BOLD, Run, Style, layout, measure, picture, runs
from media.piece import CardSpec, render_card

CANVAS = canvas("9:16")


def first_frame(video: Path, out: Path) -> Image.Image:
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-frames:v", "1", "-y",
                    str(out)], check=True)
    return Image.open(out).convert("RGB")


def colours(image: Image.Image) -> set[tuple[int, int, int]]:
    """Distinct strongly saturated colours (quantised), i.e. not greys and not the card."""
    data = image.tobytes()
    found = set()
    for i in range(0, len(data), 3):
        r, g, b = data[i], data[i + 1], data[i + 2]
        if max(r, g, b) - min(r, g, b) > 90:
            found.add((r // 32, g // 32, b // 32))
    return found


def test_a_title_of_emoji_is_drawn_in_colour_not_as_boxes(tmp_path: Path) -> None:
    """A card titled with 🇮🇩 ☕ 🎉 shows colour glyphs: red and white of the flag among many
    colours; the same card with characters no font has shows only grey boxes."""
    render_card(tmp_path / "emoji.mov", CardSpec(CANVAS, "🇮🇩 ☕ 🎉", color="#000000"),
                timeout=120)
    render_card(tmp_path / "boxes.mov", CardSpec(CANVAS, "\ue000 \ue001 \ue002",
                                                 color="#000000"), timeout=120)
    emoji = first_frame(tmp_path / "emoji.mov", tmp_path / "emoji.png")
    boxes = first_frame(tmp_path / "boxes.mov", tmp_path / "boxes.png")
    assert len(colours(boxes)) == 0, "the missing-glyph boxes are white or grey"
    drawn = colours(emoji)
    assert len(drawn) >= 8, drawn
    assert any(r >= 6 and g <= 2 and b <= 2 for r, g, b in drawn), "the flag's red is there"


def test_runs_split_text_from_emoji_sequences() -> None:
    assert runs("Kopi ☕ enak 🇮🇩🎉!") == [Run("Kopi ", False), Run("☕", True),
                                          Run(" enak ", False), Run("🇮🇩🎉", True),
                                          Run("!", False)]
    assert runs("keluarga 👨\u200d👩\u200d👧 1\ufe0f\u20e3") == [
        Run("keluarga ", False), Run("👨\u200d👩\u200d👧", True), Run(" ", False),
        Run("1\ufe0f\u20e3", True)]
    assert runs("© 2026 ✓ ★") == [Run("© 2026 ✓ ★", False)]  # text symbols stay text


def test_lines_are_wrapped_by_measured_width() -> None:
    style = Style(FONT_BOLD, 40)
    text = "Kopi susu gula aren 🎉 enak sekali, pesan lagi besok pagi ☕"
    lines = layout(text, 300, style, max_lines=10)
    assert len(lines) > 2
    assert all(measure(line, style) <= 300 for line in lines)
    assert " ".join(lines) == text
    short = layout(text, 300, style, max_lines=2)
    assert len(short) == 2 and short[-1].endswith("\u2026")
    assert layout("x" * 200, 300, style, max_lines=10)[0] != "x" * 200  # a long word breaks


def test_right_to_left_lines_are_set_from_the_right() -> None:
    """A Hebrew line's ink sits at the right of its block, an English one's at the left."""
    style = Style(size=30)
    block = ["שלום", "Hello world and a long line"]
    image = picture(block, style)
    step = round(style.size * style.line_spacing)
    first = image.crop((0, 0, image.width, step)).getbbox()
    second = image.crop((0, step, image.width, 2 * step)).getbbox()
    assert first is not None and second is not None
    assert first[2] >= image.width - 2 and first[0] > image.width // 2
    assert second[0] <= 2
