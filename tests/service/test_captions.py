"""A reel's WebVTT captions: timed on the reel's own frames, member text escaped."""

from __future__ import annotations

from typing import Any

from service.domain.captions import cue_text, timestamp, webvtt
from service.domain.composition import Manifest


def manifest(clips: list[dict[str, Any]], **more: Any) -> Manifest:
    base: dict[str, Any] = {
        "reel_id": "r1", "version": 1, "canvas": "9:16", "template": 1, "overlap": 0,
        "title_card": None, "music": None, "intro": None, "outro": None, "kumpul": "0",
        "clips": [{"clip_id": f"c{n}", "clip_version": 1, "consent_basis": "release",
                   "release_version": 1, "release_sha256": "x", "consented_at": "2026-12-01",
                   "trim_in": 0, "caption": None} | clip for n, clip in enumerate(clips)]}
    return Manifest.from_json(base | more)


def test_title_then_each_clip_for_as_long_as_it_is_on_screen() -> None:
    """A title card (60 frames) and two clips joined by 15-frame crossfades: each cue spans
    its part of the reel, crossfades overlapping."""
    made = webvtt(manifest(
        [{"trim_out": 78, "caption": {"name": "Ana", "quote": "Best beans"}},
         {"trim_out": 90, "caption": {"name": "Budi", "quote": ""}},
         {"trim_out": 60, "caption": None}],
        overlap=15, title_card={"text": "Spring", "color": "#000000"},
        parts=[60, 78, 90, 60], frames=228), "Spring mornings")
    assert made == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.000 line:2 align:center\nSpring mornings\n\n"
        "00:00:01.500 --> 00:00:04.100 line:2 align:center\nAna\nBest beans\n\n"
        "00:00:03.600 --> 00:00:06.600 line:2 align:center\nBudi\n")


def test_member_text_cannot_break_out_of_its_cue() -> None:
    """Tags, entities, an arrow and blank lines in names and quotes stay text in one cue."""
    evil = "<c.x>Ana</c> & co --> 00:00:09.000\n\nWEBVTT <00:00:01.000>"
    made = webvtt(manifest([{"trim_out": 60, "caption": {"name": evil, "quote": "a\u2028b"}}],
                           parts=[60], frames=60), "<b>Title</b>")
    assert "<" not in made and made.count("-->") == 2
    assert made.count(" --> ") == 2
    assert ("&lt;c.x&gt;Ana&lt;/c&gt; &amp; co --&gt; 00:00:09.000 WEBVTT "
            "&lt;00:00:01.000&gt;") in made
    assert "\na b\n" in made and "&lt;b&gt;Title&lt;/b&gt;" in made
    assert cue_text("\x00\x1b[31m red\r\n") == "[31m red"


def test_older_renders_without_recorded_parts() -> None:
    """Renders before parts were recorded: worked out from the trims; with an intro of unknown
    length, only the title."""
    plain = webvtt(manifest([{"trim_out": 90, "caption": {"name": "Ana", "quote": ""}}],
                            frames=90), "T")
    assert "00:00:00.000 --> 00:00:03.000 line:2 align:center\nAna" in plain
    with_intro = webvtt(manifest([{"trim_out": 90, "caption": {"name": "Ana", "quote": ""}}],
                                 intro="a1", frames=150), "T")
    assert with_intro == "WEBVTT\n\n00:00:00.000 --> 00:00:02.000 line:2 align:center\nT\n"
    assert timestamp(3600 * 30 + 61 * 30 + 1) == "01:01:01.033"
