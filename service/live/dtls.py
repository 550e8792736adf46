"""Which side of DTLS Kumpul takes in its answers.

aiortc answers an `a=setup:actpass` offer as `active`, i.e. as the DTLS client, and its
client offers only ECDHE-ECDSA suites. A peer with an RSA certificate (GStreamer 1.22's
webrtcbin on Debian 12) is then a DTLS server that can pick none of them: "no shared
cipher". Answering `passive` makes Kumpul the DTLS server with its ECDSA certificate, which
every WebRTC client's DTLS client accepts (browsers, OBS, GStreamer, aiortc). aiortc takes
its role from the setup attribute of the local answer it is given (`tests/live/
test_aiortc_internals.py` checks that).
"""

from __future__ import annotations

import re

_SETUP = re.compile(r"^a=setup:(\w+)\r?$", re.M)


def as_dtls_server(offer: str, answer: str) -> str:
    """`answer` with `a=setup:passive` where the offer left the choice to us (actpass, or no
    setup attribute, which RFC 8842 reads as actpass); an offer that insists on being the
    DTLS server (`passive`) keeps aiortc's `active`."""
    offered = set(_SETUP.findall(offer))
    if "passive" in offered:
        return answer
    return _SETUP.sub(lambda m: m.group(0).replace("setup:active", "setup:passive"), answer)
