"""Text people type, made fit to keep: one line, white space squeezed, within a length."""

from __future__ import annotations

# Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): in a
# name or title they reorder what others see ("txt.exe" shown as "exe.txt"). Right-to-left
# text itself needs none of them.
BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def one_line(raw: object, limit: int | None = None) -> str:
    """`raw` as text on one line: bidi overrides dropped, every run of white space (newlines
    too) becomes one space, the ends are trimmed, and at most `limit` characters are kept."""
    text = " ".join(str(raw or "").translate(BIDI_CONTROLS).split())
    return text if limit is None else text[:limit]
