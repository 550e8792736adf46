"""Which local addresses aiortc's ICE offers as host candidates.

aioice leaves out 127.0.0.1; on a machine whose clients are local (tests, a laptop
demo) the loopback address is configured explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import aioice.ice

_lookup = aioice.ice.get_host_addresses


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Offer exactly `addresses` (IPv4) as host candidates; empty restores the default."""
    if not addresses:
        aioice.ice.get_host_addresses = _lookup
        return
    fixed = list(addresses)

    def lookup(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return list(fixed) if use_ipv4 else []

    aioice.ice.get_host_addresses = lookup
