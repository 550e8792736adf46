"""HTTP out to integrators' webhook endpoints, to public addresses only (no SSRF).

`destination(url, allow)` checks a URL and resolves its host once: every address it names
must be public (not loopback, private, link-local, CGNAT, multicast, reserved, unspecified,
documentation or a cloud metadata address; IPv4 inside IPv6, mapped, compatible, NAT64 or
6to4, is judged as the IPv4 it carries), unless the host (or the address) is one the operator
allows. `post()` then connects to that checked address itself, so no second DNS lookup can
point it elsewhere, and never follows a redirect. Nothing here knows of the database.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL = 2000
EXCERPT_BYTES = 1000
READ_AT_MOST = 64 * 1024  # of an answer's body; the rest is not waited for

# Beyond what `ipaddress` calls private or reserved: ranges no webhook should reach.
_REFUSED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "2001:db8::/32",
    "100::/64", "2001::/23",
))
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254",
                                                        "100.100.100.200"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")


class Refused(Exception):
    """The URL may not be called: `why` is a short English reason, `address` what it named."""

    def __init__(self, why: str, address: str = "") -> None:
        super().__init__(f"{why}: {address}" if address else why)
        self.why = why
        self.address = address


class Failed(Exception):
    """The attempt did not get an answer (no connection, timeout, TLS); the message says why."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    target: str  # path and query
    address: str  # the checked address to connect to


@dataclass(frozen=True)
class Answer:
    status: int
    latency_ms: int
    excerpt: str


def carried_ipv4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(int(ip))
    return None


def is_public(ip: IP) -> bool:
    """Whether a webhook may go to `ip` without the operator allowing it by name."""
    inner = carried_ipv4(ip)
    if inner is not None:
        return is_public(inner)
    if ip in _METADATA or any(ip in net for net in _REFUSED if net.version == ip.version):
        return False
    return bool(ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback
                                      or ip.is_link_local or ip.is_unspecified
                                      or ip.is_private))


def split_url(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and target of a webhook URL, or Refused."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or any(
            c.isspace() or ord(c) < 32 for c in url):
        raise Refused("not a URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("only http and https URLs")
    if parts.username is not None or parts.password is not None:
        raise Refused("no user name or password in the URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("not a valid port") from None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port, target


def allowed(host: str, ip: IP, allow: Iterable[str]) -> bool:
    names = {a.lower() for a in allow}
    return host.lower() in names or str(ip) in names


def destination(url: str, allow: Iterable[str] = ()) -> Destination:
    """Check `url` and resolve its host once; every address it resolves to must be public
    (or allowed). Refused says why not."""
    scheme, host, port, target = split_url(url)
    allow = tuple(allow)
    try:
        literal: IP | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        found: list[IP] = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Refused("the host name does not resolve", host) from exc
        found = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0])
                                   for info in infos))
        if not found:
            raise Refused("the host name does not resolve", host)
    for ip in found:
        if not is_public(ip) and not allowed(host, ip, allow):
            inner = carried_ipv4(ip)
            raise Refused("not a public address", f"{ip} ({inner})" if inner else str(ip))
    return Destination(scheme, host, port, target, str(found[0]))


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to the checked address, whatever the host name resolves to now."""

    def __init__(self, dest: Destination, timeout: float) -> None:
        super().__init__(dest.host, dest.port, timeout=timeout)
        self.dest = dest

    def connect(self) -> None:
        self.sock = socket.create_connection((self.dest.address, self.dest.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTLS(_Pinned):
    def __init__(self, dest: Destination, timeout: float,
                 context: ssl.SSLContext | None = None) -> None:
        super().__init__(dest, timeout)
        self.context = context or ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.dest.host)


def post(dest: Destination, body: bytes, headers: Mapping[str, str], *,
         timeout: float) -> Answer:
    """POST `body` to the checked destination within `timeout` seconds in all; the answer's
    status, the time it took and the start of its body. Failed when there is no answer."""
    started = time.monotonic()
    deadline = started + timeout
    conn = (_PinnedTLS if dest.scheme == "https" else _Pinned)(dest, timeout)
    try:
        conn.request("POST", dest.target, body=body, headers=dict(headers))
        response = conn.getresponse()
        status = response.status
        chunks: list[bytes] = []
        size = 0
        while size < READ_AT_MOST:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = response.read1(4096) if hasattr(response, "read1") else response.read(4096)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except TimeoutError:
        raise Failed(f"no answer within {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise Failed(f"TLS failed: {exc.reason or exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise Failed(f"{type(exc).__name__}: {exc}"[:300]) from None
    finally:
        conn.close()
    latency = int((time.monotonic() - started) * 1000)
    excerpt = b"".join(chunks)[:EXCERPT_BYTES].decode("utf-8", "replace")
    return Answer(status, latency, excerpt)
