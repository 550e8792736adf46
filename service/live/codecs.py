"""Which codec each connection of a room speaks, decided before aiortc chooses.

aiortc picks a transceiver's codecs inside `setRemoteDescription` (the offer's codecs it
knows, filtered by the transceiver's preferences), so preferences set afterwards change
nothing. Rooms therefore create each transceiver first, with exactly one codec (and its
RTX) preferred, and only then hand aiortc the offer:

- a publisher is answered with one video and one audio codec: the first of its offer that
  aiortc can receive (a guest on stage: the host's, so every viewer's stage picture plays);
- a viewer is answered with the publisher's codec, or refused (406) naming the codec the
  session needs. Nothing is ever transcoded for a viewer.
"""

from __future__ import annotations

from aiortc import sdp
from aiortc.codecs import CODECS, is_rtx
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from service.errors import ApiError, BadRequest


class CodecNotOffered(ApiError):
    status = 406
    code = "codec_not_offered"


def media_of(offer: str) -> list[sdp.MediaDescription]:
    """The offer's audio and video sections, in order."""
    try:
        parsed = sdp.SessionDescription.parse(offer)
    except (ValueError, KeyError, IndexError, AssertionError) as exc:  # aiortc asserts too
        raise BadRequest("The SDP offer can't be used: %(detail)s.", code="malformed_sdp",
                         detail=str(exc) or type(exc).__name__) from None
    return [m for m in parsed.media if m.kind in ("audio", "video")]


def name(codec: RTCRtpCodecParameters) -> str:
    """How people read a codec: "H264", "VP8", "opus"."""
    return codec.mimeType.split("/", 1)[1]


def _same(wanted: RTCRtpCodecParameters, codec: RTCRtpCodecParameters) -> int:
    """How well `codec` carries `wanted`'s frames as they are: 2 exactly, 1 decodable
    (same codec; for H.264 the same packetization mode), 0 not at all."""
    if codec.mimeType.lower() != wanted.mimeType.lower() or codec.clockRate != wanted.clockRate:
        return 0
    if codec.mimeType.lower() != "video/h264":
        return 2
    keys = ("packetization-mode", "profile-level-id")
    mine = [str(codec.parameters.get(k, "0")).lower() for k in keys]
    theirs = [str(wanted.parameters.get(k, "0")).lower() for k in keys]
    if mine == theirs:
        return 2
    return 1 if mine[0] == theirs[0] else 0


def _capability(codec: RTCRtpCodecParameters) -> RTCRtpCodecCapability:
    return RTCRtpCodecCapability(mimeType=codec.mimeType, clockRate=codec.clockRate,
                                 channels=codec.channels, parameters=dict(codec.parameters))


def choose(media: sdp.MediaDescription, wanted: RTCRtpCodecParameters | None,
           required: bool = True) -> list[RTCRtpCodecCapability]:
    """The preferences that make aiortc answer `media` with one codec: `wanted` (or the
    closest that carries its frames unchanged), else (when not `required`, or nothing is
    wanted) the offer's first that aiortc knows; its RTX too where offered. Raises
    `CodecNotOffered` when nothing fits."""
    common = find_common_codecs(CODECS[media.kind], media.rtp.codecs)
    candidates = [c for c in common if not is_rtx(c)]
    if wanted is not None:
        ranked = sorted(((_same(wanted, c), i) for i, c in enumerate(candidates)),
                        key=lambda pair: (-pair[0], pair[1]))
        fitting = [candidates[i] for score, i in ranked if score]
        if fitting or required:
            candidates = fitting
        if not candidates:
            raise CodecNotOffered(
                "This session sends %(codec)s %(kind)s, which your player didn't offer.",
                hint="Use a player that can receive %(codec)s.",
                codec=name(wanted), kind=media.kind)
    if not candidates:
        raise CodecNotOffered("None of the offered %(kind)s codecs can be received here.",
                              hint="Offer VP8 or H.264 video and Opus audio.",
                              kind=media.kind)
    first = candidates[0]
    preferred = [_capability(first)]
    if any(is_rtx(c) and c.parameters.get("apt") == first.payloadType for c in common):
        preferred.append(RTCRtpCodecCapability(mimeType=f"{media.kind}/rtx",
                                               clockRate=first.clockRate))
    return preferred
