"""The words, times and numbers people read: catalogs complete, nothing shown untranslated,
times in the reader's zone with Babel's formats."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest
from jinja2 import Environment

from service import i18n

ROOT = Path(__file__).resolve().parents[1]
SATURDAY_NOON_UTC = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def catalogs_tool() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("i18n_tool", str(ROOT / "scripts" / "i18n"))
    spec = importlib.util.spec_from_loader("i18n_tool", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_catalogs_hold_every_shown_string_translated() -> None:
    """Every string the code, templates and page scripts show is in the id and en catalogs,
    translated, with the same placeholders; no message is built with an f-string."""
    assert catalogs_tool().check() == []


def test_the_check_catches_a_new_string_and_an_untranslated_entry(tmp_path: Path) -> None:
    """The completeness check fails for a message the catalogs lack and for an empty
    Indonesian entry (so the test above can fail)."""
    tool = catalogs_tool()
    pot = tool.template("kumpul", [("A brand new message", "x.py", 1)])
    catalog = tool.updated("id", "kumpul", pot)
    assert "A brand new message" in tool.untranslated(catalog)
    errors = {"ApiError"}
    source = tmp_path / "made.py"
    source.write_text('raise ApiError(f"Clip {clip} is gone.")\n')
    tool.ROOT = tmp_path  # type: ignore[attr-defined]
    _, problems = tool.python_messages(source, errors)
    assert problems and "f-string" in problems[0]


@pytest.mark.parametrize(("language", "zone", "expected"), [
    ("id", "Asia/Jakarta", "Sabtu, 5 Des 2026 19.00 WIB"),
    ("id", "Asia/Makassar", "Sabtu, 5 Des 2026 20.00 WITA"),
    ("id", "Asia/Jayapura", "Sabtu, 5 Des 2026 21.00 WIT"),
    ("en", "Asia/Jakarta", "Saturday, 5 Dec 2026, 7:00\u202fPM WIB"),
    ("en", "UTC", "Saturday, 5 Dec 2026, 12:00\u202fPM UTC"),
])
def test_a_moment_is_written_in_the_readers_zone(language: str, zone: str,
                                                 expected: str) -> None:
    """One instant, written with Babel's formats for the language in the reader's zone."""
    assert i18n.Speech.of(language, zone).when(SATURDAY_NOON_UTC) == expected


def test_durations_numbers_and_sizes_as_people_say_them() -> None:
    """Durations are spoken ("3 menit"), numbers use the locale's separators."""
    id_, en = i18n.Speech.of("id", "Asia/Jakarta"), i18n.Speech.of("en", "UTC")
    assert id_.duration(180) == "3 menit"
    assert id_.duration(95) == "1 menit 35 detik"
    assert en.duration(180) == "3 minutes"
    assert id_.number(1234.5) == "1.234,5"
    assert en.number(1234.5) == "1,234.5"
    assert id_.size(500_000_000) == "500 MB"
    assert id_.size(2_500_000) == "2,5 MB"


def test_messages_fill_named_placeholders_and_leave_user_text_alone() -> None:
    """Values are formatted by their names; a moderator's own note with braces or percent
    signs passes through unchanged."""
    speech = i18n.Speech.of("id", "Asia/Jakarta")
    told = speech.text("This video is %(length_seconds)s long; stories can be at most "
                       "%(max_seconds)s.", {"length_seconds": 200, "max_seconds": 180})
    assert told == "Panjang video ini 3 menit 20 detik; cerita paling lama 3 menit."
    note = "100% {great} %(nope)s"
    assert speech.text(note) == note


@pytest.mark.parametrize(("header", "expected"), [
    ("id-ID,id;q=0.9,en-US;q=0.8", "id"), ("en-US,en;q=0.9", "en"), ("fr-FR", "id"),
    ("en;q=0.2, id;q=0.8", "id"), ("in", "id"), (None, "id"), ("id;q=0, en", "en"),
])
def test_accept_language_picks_one_of_our_languages(header: str | None, expected: str) -> None:
    """The browser's preference decides for visitors; the site's default otherwise."""
    assert i18n.negotiate(header, "id") == expected


def test_datetime_local_fields_are_read_in_the_readers_zone() -> None:
    """19:00 typed by someone in WITA is 11:00 UTC."""
    speech = i18n.Speech.of("id", "Asia/Makassar")
    assert speech.parse_local("2026-12-05T19:00") == datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    assert speech.input_value(datetime(2026, 12, 5, 11, 0, tzinfo=UTC)) == "2026-12-05T19:00"


class _Shown(HTMLParser):
    """Text and attributes people read, outside translation."""

    SHOWN = {"title", "alt", "placeholder", "aria-label", "data-confirm", "label"}

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        for name, value in attrs:
            if name in self.SHOWN and value and re.search(r"[A-Za-z]{2}", value):
                self.found.append(f"{tag}[{name}]={value!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        text = data.replace("Kumpul", "")  # the product's name
        if text.lstrip().startswith("<iframe"):  # embed code, not words
            return
        if not self.skip and re.search(r"[A-Za-z]{2}", text):
            self.found.append(repr(data.strip()))



def _untranslated_text(source: str) -> list[str]:
    """The template with translated blocks and expressions taken out, read as HTML."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    out, in_trans, tokens = [], False, list(env.lex(source))
    for index, (_line, kind, value) in enumerate(tokens):
        if kind == "name" and value in ("trans", "endtrans") and tokens[index - 1][1] in (
                "block_begin", "whitespace") :
            in_trans = value == "trans"
        if kind == "data" and not in_trans:
            out.append(value)
        elif kind == "variable_begin":
            out.append("X0")
    parser = _Shown()
    parser.feed("".join(out).replace("X0", "0"))
    return parser.found


@pytest.mark.parametrize("template", sorted((ROOT / "web" / "templates").glob("*.html")),
                         ids=lambda p: p.name)
def test_templates_show_no_text_outside_the_catalogs(template: Path) -> None:
    """Every word a template shows is inside {% trans %} or _()."""
    assert _untranslated_text(template.read_text()) == []


_LITERAL = re.compile(
    r"""(?P<before>[\w.]*\(?\s*)(?P<q>["'`])(?P<text>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
_CODE = re.compile(r"[<>=#\[\]{};/]|^[\w.-]+$|^[\w-]+(:[\w-]+)?$|codecs|^\w+/\w+")


@pytest.mark.parametrize("script", sorted((ROOT / "web" / "static").glob("*.js")),
                         ids=lambda p: p.name)
def test_page_scripts_show_no_text_outside_the_catalogs(script: Path) -> None:
    """String literals in page scripts that read as words go through t()."""
    bare = []
    for line in script.read_text().splitlines():
        if line.lstrip().startswith(("//", "/*", "*")):
            continue
        for match in _LITERAL.finditer(line):
            text = re.sub(r"\$\{[^}]*\}", "", match.group("text"))
            if match.group("before").endswith("t(") or re.search(
                    r"(class: |className = |Bearer )$", line[:match.start("q")]) \
                    or text.startswith("Bearer"):
                continue
            if re.search(r"[A-Za-z]{3,}[ ,.?!…][A-Za-z]{2,}|^[A-Z][a-z]{2,}", text) \
                    and not _CODE.search(text):
                bare.append(text)
    assert bare == []
