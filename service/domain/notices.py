"""What people are told: each kind of notice as words in the catalogs, composed for one
reader (their language and time zone) as a mail (plain text plus simple HTML, with one-click
unsubscribe for its kind, RFC 8058) or as a line for the bell.

A notice's values (`params`) are kept as plain JSON: `*_at` are ISO times, shown in the
reader's zone; `role` and `reason` are msgids, told in the reader's language; the rest is
the people's own text, shown as it is (escaped in HTML).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from service import i18n, security
from service.i18n import N_
from service.mail import Mail

CHANNELS = ("email", "in_app", "off")
CHANNEL_LABELS = {"email": N_("Email and in the app"), "in_app": N_("Only in the app"),
                  "off": N_("Off")}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Kind:
    """One kind of notice: its name on the account page, its subject (also the bell's line),
    its paragraphs and the label of its link. A line whose values are empty is left out."""

    name: str
    label: str
    subject: str
    lines: tuple[str, ...]
    action: str
    choosable: bool = True  # people choose email / in-app / off (not for invites, resets)


KINDS = {kind.name: kind for kind in (
    Kind("invite", N_("Invitations"),
         N_("You're invited to %(community)s on Kumpul"),
         (N_("%(inviter)s invited you to join %(community)s on Kumpul as a %(role)s."),
          N_("The link works until %(expires_at)s.")),
         N_("Join %(community)s"), choosable=False),
    Kind("session_scheduled", N_("A live session is scheduled"),
         N_("New live session in %(community)s: %(title)s"),
         (N_("%(host)s scheduled a live session, %(title)s, for %(starts_at)s."),
          N_("Add it to your calendar from the session's page.")),
         N_("See the session")),
    Kind("session_soon", N_("A live session starts in an hour"),
         N_("Starting in an hour: %(title)s"),
         (N_("The live session %(title)s in %(community)s starts at %(starts_at)s."),),
         N_("Open the session")),
    Kind("session_live", N_("A live session has started"),
         N_("Live now: %(title)s"),
         (N_("%(host)s is live now in %(community)s: %(title)s."),),
         N_("Watch now")),
    Kind("story_approved", N_("Your story was approved"),
         N_("Your story was approved"),
         (N_("A moderator of %(community)s approved your story %(title)s."),
          N_("It may now appear in the community's highlight reels.")),
         N_("See your stories")),
    Kind("story_changes", N_("Your story needs changes"),
         N_("Your story needs changes"),
         (N_("A moderator of %(community)s could not use your story %(title)s as it is."),
          N_("Why: %(reason)s"),
          N_("The moderator adds: %(note)s"),
          N_("You are welcome to send a new version.")),
         N_("See your stories")),
    Kind("story_in_reel", N_("Your story is in a published reel"),
         N_("Your story is in a reel"),
         (N_("Your story %(title)s is in %(reel)s, a highlight reel %(community)s just "
             "published."),),
         N_("Watch the reel")),
    Kind("highlight_published", N_("A highlight of your session was published"),
         N_("A highlight of your session was published"),
         (N_("A moment of your live session %(title)s is in %(reel)s, a highlight reel "
             "%(community)s just published."),),
         N_("Watch the reel")),
    Kind("password_reset", N_("Password reset"),
         N_("Reset your Kumpul password"),
         (N_("Hello %(name)s,"),
          N_("Someone (we hope you) asked to reset your Kumpul password. Open the link "
             "within %(valid_seconds)s to choose a new one."),
          N_("The link works once. If you did not ask, ignore this mail: your password "
             "stays as it is.")),
         N_("Choose a new password"), choosable=False),
)}
CHOOSABLE = tuple(kind for kind in KINDS.values() if kind.choosable)


def values(speech: i18n.Speech, params: Mapping[str, object]) -> dict[str, str]:
    """The params as the reader reads them."""
    shown: dict[str, str] = {}
    for name, value in params.items():
        if name.endswith("_at") and isinstance(value, str) and value:
            shown[name] = speech.when(datetime.fromisoformat(value))
        elif name in ("role", "reason") and isinstance(value, str):
            shown[name] = speech.gettext(i18n.LABELS.get(value, value))
        elif value is None:
            shown[name] = ""
        else:
            shown[name] = speech.value(name, value)
    return shown


def _line(speech: i18n.Speech, message: str, shown: Mapping[str, str]) -> str | None:
    """The message filled in; None when a value it names is empty."""
    names = _PLACEHOLDER.findall(message)
    if any(not shown.get(name) for name in names):
        return None
    return speech.fill(speech.gettext(message), shown)


def headline(speech: i18n.Speech, kind: str, params: Mapping[str, object]) -> str:
    """The notice in one line (the subject of its mail, the bell's list)."""
    found = KINDS.get(kind)
    if found is None:
        return kind
    return _line(speech, found.subject, values(speech, params)) or speech.gettext(found.label)


@dataclass(frozen=True)
class Footer:
    """Why the reader gets the mail and how to stop it (None for mails a person asked for)."""

    choices_url: str
    unsubscribe_url: str


def compose(kind: str, speech: i18n.Speech, params: Mapping[str, object], *, to: str,
            link: str, footer: Footer | None, shown: Mapping[str, str] | None = None) -> Mail:
    """A mail of `kind` for one reader: plain text and HTML, and, with a footer, the
    List-Unsubscribe headers of RFC 8058 (one POST to the URL unsubscribes). `shown` is
    `values(speech, params)` when the caller has it already (a fan-out, per language)."""
    found = KINDS[kind]
    shown = shown if shown is not None else values(speech, params)
    subject = _line(speech, found.subject, shown) or speech.gettext(found.label)
    paragraphs = [text for text in (_line(speech, line, shown) for line in found.lines) if text]
    action = speech.fill(speech.gettext(found.action), shown)
    text = "\n\n".join([*paragraphs, action + ":\n" + link]) + "\n"
    escaped = {name: html.escape(value) for name, value in shown.items()}
    body = [f"<p>{speech.fill(speech.gettext(line), escaped)}</p>" for line in found.lines
            if _line(speech, line, shown)]
    body.append(f'<p><a href="{html.escape(link)}" style="display:inline-block;padding:10px '
                f'16px;background:#1d4ed8;color:#ffffff;text-decoration:none;border-radius:6px">'
                f"{html.escape(action)}</a></p>")
    headers: tuple[tuple[str, str], ...] = ()
    if footer is not None:
        choices = speech.gettext(N_("Change which mails you get"))
        stop = speech.gettext(N_("Unsubscribe from these mails"))
        text += f"\n-- \n{choices}:\n{footer.choices_url}\n{stop}:\n{footer.unsubscribe_url}\n"
        body.append(f'<hr><p style="font-size:12px;color:#555555">'
                    f'<a href="{html.escape(footer.choices_url)}">{html.escape(choices)}</a>'
                    f' · <a href="{html.escape(footer.unsubscribe_url)}">'
                    f"{html.escape(stop)}</a></p>")
        headers = (("List-Unsubscribe", f"<{footer.unsubscribe_url}>"),
                   ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    page = (f'<!doctype html>\n<html lang="{speech.language}"><head><meta charset="utf-8">'
            f"<title>{html.escape(subject)}</title></head>\n"
            f'<body style="font-family:sans-serif;line-height:1.5;color:#1a1a1a;'
            f'max-width:36em">\n' + "\n".join(body) + "\n</body></html>\n")
    return Mail(to, subject, text, page, headers)


# --- one-click unsubscribe: a signed (who, kind), no login --------------------------------

def unsubscribe_token(secret: str, who: str, kind: str) -> str:
    """`who` is "u:<user id>" (a person's choice) or "e:<address>" (an address's opt-out)."""
    payload = base64.urlsafe_b64encode(f"{who}\n{kind}".encode()).rstrip(b"=").decode()
    return f"{payload}.{security.sign(secret, 'unsubscribe:' + payload)[:32]}"


def read_unsubscribe(secret: str, token: str) -> tuple[str, str] | None:
    """(who, kind) of a token this site signed, else None."""
    payload, _, signature = token.partition(".")
    expected = security.sign(secret, "unsubscribe:" + payload)[:32]
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    try:
        who, _, kind = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) \
            .decode().partition("\n")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (who, kind) if kind in KINDS else None
