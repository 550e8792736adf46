"""The STUN/TURN servers handed to clients, with ephemeral TURN credentials.

TURN REST API (draft-uberti-behave-turn-rest-00, coturn's `use-auth-secret`): the username
is `<expiry unix time>:<who>`, the credential base64(HMAC-SHA1(shared secret, username)).
coturn recomputes the HMAC with its `static-auth-secret` and refuses an expired username, so
a credential handed to one page can't be reused past its expiry and no password is stored.

Clients get these servers (pages in `data-ice`, WHIP/WHEP clients as `Link` headers, RFC
9725 section 4.6). The server itself never uses them: Kumpul's own candidates are its host
addresses, so it allocates no relay, and an unreachable STUN/TURN server costs a POST or a
shutdown nothing (see `rooms.ice_configuration`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from service.settings import Settings

_WHO = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class IceServer:
    url: str
    username: str | None = None
    credential: str | None = None

    def for_page(self) -> dict[str, str]:
        """An RTCIceServer dictionary for the browser's RTCPeerConnection."""
        out = {"urls": self.url}
        if self.username is not None and self.credential is not None:
            out.update(username=self.username, credential=self.credential)
        return out

    def link(self) -> str:
        """A `Link: <url>; rel="ice-server"` value (RFC 9725 section 4.6)."""
        value = f'<{self.url}>; rel="ice-server"'
        if self.username is not None and self.credential is not None:
            value += (f'; username="{_quoted(self.username)}"; '
                      f'credential="{_quoted(self.credential)}"; credential-type="password"')
        return value


def _quoted(text: str) -> str:
    """An RFC 8288 quoted-string body (usernames and base64 credentials need no escapes,
    static ones from the settings might)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def rest_credential(secret: str, who: str, ttl_seconds: int,
                    now: float | None = None) -> tuple[str, str]:
    """(username, credential) valid for `ttl_seconds` from `now` under `secret`."""
    expiry = int(now if now is not None else time.time()) + ttl_seconds
    username = f"{expiry}:{_WHO.sub('_', who)[:64]}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def servers_for(settings: Settings, who: str, now: float | None = None) -> list[IceServer]:
    """The ICE servers for one client (`who` names it in TURN usernames and coturn's log):
    STUN as configured; TURN with a fresh REST API credential, or the static pair."""
    username: str | None = settings.turn_username or None
    credential: str | None = settings.turn_credential or None
    if settings.turn_secret:
        username, credential = rest_credential(settings.turn_secret, who,
                                               settings.turn_ttl_seconds, now)
    return [IceServer(url, username, credential) if url.startswith("turn") else IceServer(url)
            for url in settings.ice_servers]


def link_headers(servers: list[IceServer]) -> dict[str, str]:
    return {"Link": ", ".join(s.link() for s in servers)} if servers else {}
