"""One UDP port for every peer connection of a node, as LiveKit and mediasoup do.

aioice binds a socket per connection on a random port, so a firewall in front of a node
would have to open every port. With `KUMPUL_RTC_UDP_PORT` set, each connection's host
candidate is a virtual transport on one shared socket instead. Datagrams are told apart:

- from an address already known, they go to the connection that address belongs to;
- a STUN binding request names the connection in its USERNAME (`our-ufrag:their-ufrag`):
  it goes there, and its source address becomes that connection's (the connection itself
  checks the request's integrity before it answers);
- a STUN response goes to the connection waiting on its transaction;
- anything else is dropped.

A node on one port never resolves its peers' mDNS names (`*.local`, LAN-only): their
checks reach it and pair as peer-reflexive, and no multicast socket is opened.

The candidates carry the node's announced addresses (`KUMPUL_ICE_PUBLIC_ADDRESSES`) where
people reach it through a 1:1 NAT, in place of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
from aioice import mdns, stun
from aioice.candidate import Candidate, candidate_foundation, candidate_priority

log = logging.getLogger("kumpul.live")
Address = tuple[str, int]


class _Shared(asyncio.DatagramProtocol):
    def __init__(self, mux: UdpMux) -> None:
        self.mux = mux

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.mux.received(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like
        log.debug("udp mux: %s", exc)


class MuxTransport(asyncio.DatagramTransport):
    """What one connection's StunProtocol sends through: the shared socket."""

    def __init__(self, mux: UdpMux, protocol: aioice.ice.StunProtocol) -> None:
        super().__init__()
        self.mux = mux
        self.protocol = protocol
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self._closing and self.mux.transport is not None:
            self.mux.transport.sendto(data, addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return (self.mux.advertised[0], self.mux.port)
        if name == "socket":
            return None
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.mux.forget(self.protocol)
        asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


class UdpMux:
    """The node's one UDP socket and the connections that share it."""

    def __init__(self, port: int, advertised: Sequence[str]) -> None:
        if not advertised:
            raise ValueError("the UDP mux needs at least one address to advertise")
        self.port = port
        self.advertised = list(advertised)
        self.transport: asyncio.DatagramTransport | None = None
        self.protocols: list[aioice.ice.StunProtocol] = []
        self.routes: dict[Address, aioice.ice.StunProtocol] = {}
        self.dropped = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            sock.bind(("0.0.0.0", self.port))  # noqa: S104 - the node's media port, on purpose
        except OSError as exc:
            sock.close()
            raise OSError(f"can't bind the live-room UDP port {self.port}: {exc.strerror}. "
                          "Set KUMPUL_RTC_UDP_PORT to a free port (0: one per connection)"
                          ) from None
        transport, _ = await loop.create_datagram_endpoint(lambda: _Shared(self), sock=sock)
        self.transport = transport
        self.port = sock.getsockname()[1]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def attach(self, connection: aioice.ice.Connection, component: int,
               address: str) -> aioice.ice.StunProtocol:
        """A host candidate of `connection` on the shared port, advertised at `address`."""
        protocol = aioice.ice.StunProtocol(connection)
        protocol.connection_made(MuxTransport(self, protocol))
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", address), component=component,
            transport="udp", priority=candidate_priority(component, "host"), host=address,
            port=self.port, type="host")
        self.protocols.append(protocol)
        return protocol

    def forget(self, protocol: aioice.ice.StunProtocol) -> None:
        with contextlib.suppress(ValueError):
            self.protocols.remove(protocol)
        for addr in [a for a, p in self.routes.items() if p is protocol]:
            del self.routes[addr]

    def received(self, data: bytes, addr: Address) -> None:
        protocol = self.routes.get(addr) or self._claim(data, addr)
        if protocol is None:
            self.dropped += 1
            return
        protocol.datagram_received(data, addr)

    def _claim(self, data: bytes, addr: Address) -> aioice.ice.StunProtocol | None:
        """Which connection a datagram from a new address belongs to (STUN only)."""
        try:
            message = stun.parse_message(data)
        except ValueError:
            return None
        if message.message_class == stun.Class.REQUEST:
            username = message.attributes.get("USERNAME")
            ours = str(username).split(":", 1)[0] if username else ""
            for protocol in self.protocols:
                if protocol.receiver.local_username == ours:
                    self.routes[addr] = protocol
                    return protocol
            return None
        for protocol in self.protocols:  # a response to one of our checks
            if message.transaction_id in protocol.transactions:
                return protocol
        return None


_gather = aioice.ice.Connection.get_component_candidates
_add_remote = aioice.ice.Connection.add_remote_candidate


async def _add_unless_mdns(self: aioice.ice.Connection,
                           remote_candidate: Candidate | None) -> None:
    if remote_candidate is not None and mdns.is_mdns_hostname(remote_candidate.host):
        return
    await _add_remote(self, remote_candidate)


def use_mux(mux: UdpMux | None) -> None:
    """Gather every new connection's host candidates on `mux` (None: one socket each)."""
    if mux is None:
        aioice.ice.Connection.get_component_candidates = _gather  # type: ignore[method-assign]
        aioice.ice.Connection.add_remote_candidate = _add_remote  # type: ignore[method-assign]
        return
    aioice.ice.Connection.add_remote_candidate = _add_unless_mdns  # type: ignore[method-assign]

    async def gather(self: aioice.ice.Connection, component: int, addresses: list[str],
                     timeout: int = 5) -> list[Candidate]:  # noqa: ASYNC109 - aioice's own
        protocols = [mux.attach(self, component, address) for address in mux.advertised]
        self._protocols += protocols
        return [p.local_candidate for p in protocols]

    aioice.ice.Connection.get_component_candidates = gather  # type: ignore[method-assign]


def announce(addresses: Sequence[str]) -> Callable[[], None]:
    """Per-connection sockets behind a 1:1 NAT: their host candidates name the announced
    address (the NAT keeps the port). Returns the undo."""
    public = list(addresses)

    async def gather(self: aioice.ice.Connection, component: int, addresses: list[str],
                     timeout: int = 5) -> list[Candidate]:  # noqa: ASYNC109 - aioice's own
        found = await _gather(self, component, addresses, timeout)
        for candidate in found:
            if candidate.type == "host" and public:
                candidate.host = public[0]
                candidate.foundation = candidate_foundation("host", "udp", public[0])
        return found

    aioice.ice.Connection.get_component_candidates = gather  # type: ignore[method-assign]

    def undo() -> None:
        aioice.ice.Connection.get_component_candidates = _gather  # type: ignore[method-assign]

    return undo
