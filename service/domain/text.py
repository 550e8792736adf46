"""Text people type, made fit to keep: one line, white space squeezed, within a length."""

from __future__ import annotations


def one_line(raw: object, limit: int | None = None) -> str:
    """`raw` as text on one line: every run of white space (newlines too) becomes one space,
    the ends are trimmed, and at most `limit` characters are kept."""
    text = " ".join(str(raw or "").split())
    return text if limit is None else text[:limit]
