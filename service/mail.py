"""Sending mail: one `Transport` interface, two transports.

- `log` (the embedded default): each mail is written to the JSON log (`kumpul.mail`); the
  outbox page shows it too. Nothing leaves the machine.
- `smtp`: a kept aiosmtplib client (one connection, opened on first use, reused, opened
  again when the server dropped it), plain, STARTTLS or TLS, with or without login.

Mails are plain text, or plain text and HTML (multipart/alternative), with the headers a
mail client expects (From, To, Subject, Date, Message-ID, Auto-Submitted) and any of their
own (List-Unsubscribe). Nothing here knows of users or the database: the outbox
(`service/domain/outbox.py`) records each mail and whether it went.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from service.settings import Settings

log = logging.getLogger("kumpul.mail")
LONG_LINES = email.policy.default.clone(max_line_length=998)
SMTP_LINES = LONG_LINES.clone(linesep="\r\n")


class MailError(Exception):
    """The transport could not hand the mail over; the message says why."""


@dataclass(frozen=True)
class Mail:
    """A mail: plain text, optionally with an HTML alternative (multipart/alternative), and
    extra headers (e.g. List-Unsubscribe)."""

    to: str
    subject: str
    text: str
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        lines = [self.to, self.subject, *(part for pair in self.headers for part in pair)]
        if any("\n" in value or "\r" in value for value in lines):
            raise MailError("a recipient, subject or header may not span lines")

    def message(self, sender: str) -> EmailMessage:
        self.check()
        # Headers fold at 998 octets, not 78: a long List-Unsubscribe URL has nowhere to fold
        # and would otherwise be turned into encoded words that mail clients cannot follow.
        msg = EmailMessage(policy=LONG_LINES)
        msg["From"] = sender
        msg["To"] = self.to
        msg["Subject"] = self.subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"
        for name, value in self.headers:
            msg[name] = value
        msg.set_content(self.text)
        if self.html is not None:
            msg.add_alternative(self.html, subtype="html")
        return msg


class Transport(ABC):
    name: str

    def __init__(self, sender: str) -> None:
        self.sender = sender

    @abstractmethod
    async def send(self, mail: Mail) -> None:
        """Hand the mail over, or raise MailError."""

    async def close(self) -> None:  # noqa: B027 - most transports hold nothing
        """Let go of any connection."""

    @property
    def delivers(self) -> bool:
        """Whether mails reach people (False: they only go to the log and the outbox)."""
        return True


class LogTransport(Transport):
    name = "log"

    async def send(self, mail: Mail) -> None:
        mail.check()  # refused as SMTP would refuse it; the MIME message itself is not built
        log.info("mail", extra={"to": mail.to, "subject": mail.subject, "body": mail.text,
                                "message_id": make_msgid(domain=self.domain),
                                "headers": dict(mail.headers)})

    @property
    def domain(self) -> str | None:
        return parseaddr(self.sender)[1].rpartition("@")[2] or None

    @property
    def delivers(self) -> bool:
        return False


class SmtpTransport(Transport):
    name = "smtp"

    def __init__(self, sender: str, *, host: str, port: int, tls: str, username: str,
                 password: str, timeout: float = 15.0) -> None:
        super().__init__(sender)
        self.client = aiosmtplib.SMTP(
            hostname=host, port=port, use_tls=tls == "tls", start_tls=tls == "starttls",
            username=username or None, password=password or None, timeout=timeout)
        self.lock = asyncio.Lock()  # one conversation at a time on the kept connection

    async def send(self, mail: Mail) -> None:
        message = mail.message(self.sender)
        async with self.lock:
            for attempt in (1, 2):  # a kept connection the server closed: open it again
                try:
                    if not self.client.is_connected:
                        await self.client.connect()
                    # flattened here with our policy: aiosmtplib's own folds at 78
                    await self.client.sendmail(parseaddr(self.sender)[1],
                                               [parseaddr(mail.to)[1]],
                                               message.as_bytes(policy=SMTP_LINES))
                    return
                except aiosmtplib.SMTPServerDisconnected as exc:
                    self.client.close()
                    if attempt == 2:
                        raise MailError(f"the mail server hung up: {exc}") from exc
                except (aiosmtplib.SMTPException, OSError) as exc:
                    self.client.close()
                    raise MailError(f"the mail server refused the mail: {exc}") from exc

    async def close(self) -> None:
        async with self.lock:
            if self.client.is_connected:
                try:
                    await self.client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    self.client.close()


def open_transport(settings: Settings) -> Transport:
    if settings.mail_transport == "smtp":
        return SmtpTransport(settings.mail_from, host=settings.smtp_host,
                             port=settings.smtp_port, tls=settings.smtp_tls,
                             username=settings.smtp_username, password=settings.smtp_password)
    return LogTransport(settings.mail_from)
