"""Languages, time zones and the words people read.

Every string shown to people is an English msgid in the gettext catalogs under
`service/locale/` (`id` and `en`, domain `kumpul` for Python and templates, `kumpul_js` for
page scripts). Messages that carry values use named placeholders, `%(name)s`, filled by
`Speech.text`, which also formats the values for the language: `*_seconds` as a spoken
duration ("3 menit"), `*_bytes` as a size, other numbers with the locale's separators.

`Speech` is one viewer's language and time zone. The edge (pages, the error handler) picks
it per request and makes it current; errors and templates translate through `current()`.
Outside a request the current speech is English in UTC, so logs and workers read English.
"""

from __future__ import annotations

import gettext
import hashlib
import io
import json
import re
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.dates import format_date, format_datetime, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from jinja2 import Environment

LANGUAGES = ("id", "en")
LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "en": "English"}
DOMAINS = ("kumpul", "kumpul_js")
LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_ZONE = "Asia/Jakarta"
# Indonesia's three zones by the names people use for them, in every language
INDONESIAN_ZONES = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


def is_language(value: object) -> bool:
    return isinstance(value, str) and value in LANGUAGES


def is_zone(value: object) -> bool:
    if not isinstance(value, str) or not value or len(value) > 64:
        return False
    return value in zones()


@cache
def zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_choices() -> list[tuple[str, str]]:
    """WIB, WITA and WIT by name first, then every other IANA zone."""
    named = [(name, f"{label} ({name})") for name, label in INDONESIAN_ZONES.items()]
    rest = sorted(z for z in zones() if z not in INDONESIAN_ZONES and "/" in z
                  and not z.startswith(("Etc/", "SystemV/", "US/")))
    return [*named, ("UTC", "UTC"), *((z, z) for z in rest)]


def _compiled(language: str, domain: str) -> gettext.GNUTranslations | gettext.NullTranslations:
    """The catalog: the compiled .mo when it is as new as its .po, else compiled in memory."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    po, mo = folder / f"{domain}.po", folder / f"{domain}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@cache
def translations(language: str, domain: str = "kumpul") -> gettext.NullTranslations:
    return _compiled(language, domain)


@cache
def script_catalog(language: str) -> dict[str, str]:
    """The page scripts' messages that differ from their English msgid."""
    found = translations(language, "kumpul_js")
    raw: dict[object, str] = getattr(found, "_catalog", {})
    return {key: value for key, value in raw.items()
            if isinstance(key, str) and key and value and value != key}


def negotiate(accept_language: str | None, default: str) -> str:
    """The best of our languages for an Accept-Language header (RFC 9110 q-values)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary == "in":  # the old code for Indonesian
            primary = "id"
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else default


def _zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@dataclass(frozen=True)
class Speech:
    """One viewer's language and time zone: how words, times and numbers reach them."""

    language: str = "en"
    zone_name: str = "UTC"
    zone: tzinfo = field(default=UTC, compare=False, repr=False)

    @classmethod
    def of(cls, language: str | None, zone_name: str | None) -> Speech:
        lang = language if language is not None and is_language(language) else "en"
        name = zone_name if zone_name and is_zone(zone_name) else "UTC"
        return cls(lang, name, _zone(name))

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.language)

    def gettext(self, message: str) -> str:
        return translations(self.language).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.language).ngettext(singular, plural, n)

    def text(self, message: str, params: Mapping[str, object] | None = None) -> str:
        """The message in this language with its placeholders filled."""
        return self.fill(self.gettext(message), params or {})

    def fill(self, template: str, params: Mapping[str, object]) -> str:
        """Only `%(name)s` for names given and `%%` are replaced: user text stays literal."""
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%" if params else match.group(0)
            if name not in params:
                return match.group(0)
            return self.value(name, params[name])

        return _PLACEHOLDER.sub(one, template)

    def value(self, name: str, value: object) -> str:
        if isinstance(value, bool) or value is None:
            return str(value)
        if isinstance(value, int | float):
            if name.endswith("seconds"):
                return self.duration(value)
            if name.endswith("bytes"):
                return self.size(int(value))
            return self.number(value)
        if isinstance(value, datetime):
            return self.when(value)
        return str(value)

    # --- times, in the viewer's zone ------------------------------------------------------

    def local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone)

    def zone_label(self, moment: datetime | None = None) -> str:
        """WIB, WITA, WIT; else the locale's short name, or GMT+7 style."""
        if self.zone_name in INDONESIAN_ZONES:
            return INDONESIAN_ZONES[self.zone_name]
        if self.zone_name == "UTC":
            return "UTC"
        moment = self.local(moment or datetime.now(UTC))
        short = format_datetime(moment, "zzz", tzinfo=self.zone, locale=self.language)
        if short and short[0] not in "+-":
            return short
        return format_datetime(moment, "ZZZZ", tzinfo=self.zone, locale=self.language)

    def date(self, moment: datetime) -> str:
        """"Sabtu, 5 Des 2026" / "Saturday, 5 Dec 2026"."""
        return format_date(self.local(moment), "EEEE, d MMM y", locale=self.language)

    def time(self, moment: datetime) -> str:
        """"19.00 WIB" / "7:00 PM WIB"."""
        local = self.local(moment)
        return f"{format_time(local, 'short', locale=self.language)} {self.zone_label(local)}"

    def when(self, moment: datetime) -> str:
        """"Sabtu, 5 Des 2026 19.00 WIB": the locale's own way of joining date and time."""
        local = self.local(moment)
        pattern = str(self.locale.datetime_formats.get("medium", "{1} {0}"))
        return pattern.replace("{1}", self.date(local)).replace(
            "{0}", f"{format_time(local, 'short', locale=self.language)} "
                   f"{self.zone_label(local)}").replace("'", "")

    def input_value(self, moment: datetime | None) -> str:
        """The value of a datetime-local field, in this zone."""
        return self.local(moment).strftime("%Y-%m-%dT%H:%M") if moment else ""

    def parse_local(self, raw: str) -> datetime:
        """A wall-clock time typed in this zone ("2026-12-05T19:00"), as UTC."""
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return moment.astimezone(UTC)

    # --- quantities -----------------------------------------------------------------------

    def duration(self, seconds: float) -> str:
        """As people say it: "3 menit", "1 menit 30 detik", "45 detik"."""
        whole = round(seconds)
        if 0 < seconds < 10 and abs(seconds - whole) >= 0.05:
            return format_timedelta(timedelta(seconds=1), locale=self.language).replace(
                "1", self.number(round(seconds, 1)), 1)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        parts: list[tuple[int, Literal["hour", "minute", "second"]]] = [
            (hours, "hour"), (minutes, "minute"), (secs, "second")]
        spoken = [format_timedelta(timedelta(**{f"{unit}s": amount}), granularity=unit,
                                   threshold=100, locale=self.language)
                  for amount, unit in parts if amount]
        if not spoken:
            return format_timedelta(timedelta(0), granularity="second", locale=self.language)
        return " ".join(spoken)

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self.language)

    def size(self, size: int) -> str:
        for unit, scale in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
            if size >= scale:
                return f"{format_decimal(round(size / scale, 1), locale=self.language)} {unit}"
        return self.fill(self.gettext(N_("%(n)s bytes")), {"n": size})


ENGLISH = Speech()
_current: ContextVar[Speech] = ContextVar("kumpul_speech", default=ENGLISH)


def current() -> Speech:
    return _current.get()


def use(speech: Speech) -> Token[Speech]:
    """Makes `speech` current for the rest of this task (a request's handler)."""
    return _current.set(speech)


def gettext_(message: str) -> str:
    return current().gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return current().ngettext(singular, plural, n)


def install(env: Environment) -> None:
    """Templates translate with `{% trans %}` and `_()`, and show times, durations and
    numbers through filters, all in the current speech."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=gettext_, ngettext=ngettext_, newstyle=True)
    env.globals["speech"] = current
    env.globals["catalog_url"] = catalog_url
    env.filters["when"] = lambda moment: current().when(moment) if moment else ""
    env.filters["date"] = lambda moment: current().date(moment) if moment else ""
    env.filters["time"] = lambda moment: current().time(moment) if moment else ""
    env.filters["duration"] = lambda seconds: current().duration(seconds)
    env.filters["number"] = lambda value: current().number(value)
    env.filters["size"] = lambda value: current().size(value)
    env.filters["told"] = lambda message, args=None: current().text(message, args)
    env.filters["label"] = label


# The words for roles and states, which the code keeps as stable English identifiers
LABELS = {
    "owner": N_("owner"), "host": N_("host"), "moderator": N_("moderator"),
    "member": N_("member"),
    "scheduled": N_("upcoming"), "live": N_("live now"), "ended": N_("ended"),
    "uploading": N_("uploading"), "uploaded": N_("uploaded"), "processing": N_("being prepared"),
    "ready_for_review": N_("waiting for review"), "approved": N_("approved"),
    "rejected": N_("not approved"), "invalid": N_("can't be used"), "failed": N_("failed"),
    "withdrawn": N_("withdrawn"), "none": N_("none"), "ready": N_("ready"),
    "draft": N_("draft"), "rendering": N_("rendering"), "rendered": N_("rendered"),
    "published": N_("published"), "unpublished": N_("unpublished"), "stale": N_("out of date"),
}


def label(value: object) -> str:
    """A role or state in the reader's words (unknown values as they are)."""
    key = str(value)
    return current().gettext(LABELS[key]) if key in LABELS else key


@cache
def script_catalog_body(language: str) -> tuple[bytes, str]:
    """The page scripts' catalog as JSON, and its content hash (part of its URL)."""
    body = json.dumps(script_catalog(language), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode()
    return body, hashlib.sha256(body).hexdigest()[:12]


def catalog_url(language: str) -> str:
    """Where pages fetch their scripts' messages; empty when there is nothing to fetch."""
    if not is_language(language) or not script_catalog(language):
        return ""
    return f"/i18n/{language}.{script_catalog_body(language)[1]}.json"
