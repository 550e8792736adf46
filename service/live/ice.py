"""How this node's live connections meet their peers: which addresses their host candidates
name, and on which UDP ports the media flows.

- `KUMPUL_ICE_HOST_ADDRESSES`: the local addresses offered (aioice leaves out 127.0.0.1; on
  a machine whose clients are local, tests or a laptop demo, it is named here);
- `KUMPUL_ICE_PUBLIC_ADDRESSES` (or one asked of a STUN server at start-up,
  `KUMPUL_ICE_DISCOVER`): the addresses people reach the node at through a 1:1 NAT;
- `KUMPUL_RTC_UDP_PORT`: one UDP port for every connection (`udpmux.UdpMux`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aioice.ice
from aioice import stun

from service.live.udpmux import UdpMux, announce, use_mux
from service.settings import Settings

log = logging.getLogger("kumpul.live")
_lookup = aioice.ice.get_host_addresses
DISCOVERY_SECONDS = 2.0


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Offer exactly `addresses` (IPv4) as host candidates; empty restores the default."""
    if not addresses:
        aioice.ice.get_host_addresses = _lookup
        return
    fixed = list(addresses)

    def lookup(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return list(fixed) if use_ipv4 else []

    aioice.ice.get_host_addresses = lookup


def discover(url: str, timeout: float = DISCOVERY_SECONDS) -> str | None:
    """This host's public IPv4 address as a STUN server sees it (RFC 5389 binding)."""
    host, _, port = url.removeprefix("stun:").rpartition(":")
    request = stun.Message(message_method=stun.Method.BINDING,
                           message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(bytes(request), (socket.gethostbyname(host), int(port)))
            data, _ = sock.recvfrom(2048)
            answer = stun.parse_message(data)
        except (OSError, ValueError):
            return None
    mapped = answer.attributes.get("XOR-MAPPED-ADDRESS") or answer.attributes.get(
        "MAPPED-ADDRESS")
    return str(mapped[0]) if answer.transaction_id == request.transaction_id and mapped \
        else None


@dataclass
class IceNode:
    """The node's ICE as started: what its candidates name, and its shared port if any."""

    advertised: list[str]
    mux: UdpMux | None
    _undo: Callable[[], None]

    def close(self) -> None:
        self._undo()
        if self.mux is not None:
            self.mux.close()


async def start(settings: Settings) -> IceNode:
    use_host_addresses(settings.ice_host_addresses)
    public = list(settings.ice_public_addresses)
    if not public and settings.ice_discover:
        found = await asyncio.to_thread(discover, settings.ice_discover)
        if found:
            log.info("public address found", extra={"address": found,
                                                    "stun": settings.ice_discover})
            public = [found]
        else:
            log.warning("no public address found; offering the node's own",
                        extra={"stun": settings.ice_discover})
    if settings.rtc_udp_port:
        advertised = public or aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
        mux = UdpMux(settings.rtc_udp_port, advertised)
        await mux.start()
        use_mux(mux)
        log.info("live media on one UDP port", extra={"port": mux.port,
                                                      "addresses": advertised})
        return IceNode(advertised, mux, lambda: use_mux(None))
    if public:
        return IceNode(public, None, announce(public))
    return IceNode([], None, lambda: None)


def node_addresses(node: IceNode) -> tuple[str, ...]:
    """The addresses this node's host candidates name, as other nodes should learn them."""
    return tuple(node.advertised) or tuple(
        aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False))
