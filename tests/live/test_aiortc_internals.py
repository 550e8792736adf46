"""The aiortc and aioice internals the fan-out and ICE settings reach into are where Kumpul
expects them. aiortc is pinned to its minor version (pyproject.toml); when an upgrade moves
any of these, this fails first, by name, before a room silently stops forwarding."""

from __future__ import annotations

import inspect
import queue
from importlib.metadata import version

import aioice.ice
from aiortc import RTCPeerConnection
from aiortc.codecs import h264, opus, vpx
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtcpPsfbPacket

from tests.live import run_async


def test_the_pinned_versions_are_installed() -> None:
    assert version("aiortc").startswith("1.16."), version("aiortc")
    assert version("aioice").startswith("0.13."), version("aioice")


def test_receiver_and_sender_internals_are_in_place() -> None:
    """forward.Fanout swaps the receiver's decoder queue and sends PLIs through it;
    forward.relay_losses wraps the sender's RTCP handler."""
    async def run() -> None:
        pc = RTCPeerConnection()
        try:
            transceiver = pc.addTransceiver("video")
            receiver, sender = transceiver.receiver, transceiver.sender
            decoder_queue = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
            assert isinstance(decoder_queue, queue.Queue)
            assert inspect.iscoroutinefunction(receiver._send_rtcp_pli)
            assert list(inspect.signature(receiver._send_rtcp_pli).parameters) == ["media_ssrc"]
            assert inspect.iscoroutinefunction(sender._handle_rtcp_packet)
            assert list(inspect.signature(sender._handle_rtcp_packet).parameters) == ["packet"]
        finally:
            await pc.close()

    run_async(run())


def test_the_decoder_queue_carries_codec_and_encoded_frame() -> None:
    """What forward._Tap.put receives: (codec, JitterFrame with data and timestamp)."""
    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in source
    assert list(inspect.signature(JitterFrame).parameters) == ["data", "timestamp"]


def test_encoders_pack_encoded_frames_and_plis_are_psfb_fmt_1() -> None:
    """Senders packetize av.Packets with `Encoder.pack` (never encode); a PLI is RTCP PSFB
    with fmt 1."""
    for encoder in (vpx.Vp8Encoder, h264.H264Encoder, opus.OpusEncoder):
        assert callable(getattr(encoder, "pack", None)), encoder.__name__
    assert RtcpPsfbPacket(fmt=1, ssrc=1, media_ssrc=2).fmt == 1


def test_ice_host_address_lookup_is_where_ice_settings_replace_it() -> None:
    """service.live.ice replaces aioice's host-address lookup."""
    assert list(inspect.signature(aioice.ice.get_host_addresses).parameters) == [
        "use_ipv4", "use_ipv6"]


def test_the_dtls_role_follows_the_local_answer() -> None:
    """dtls.as_dtls_server rewrites the answer's setup to passive; aiortc must take its DTLS
    role from the answer it is given (server), not from the one it created (client)."""
    from aiortc import RTCSessionDescription

    from service.live.dtls import as_dtls_server

    async def run() -> None:
        offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
        try:
            offerer.addTransceiver("video", direction="sendonly")
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(offerer.localDescription)
            answer = await answerer.createAnswer()
            assert "a=setup:active" in answer.sdp
            await answerer.setLocalDescription(RTCSessionDescription(
                as_dtls_server(offerer.localDescription.sdp, answer.sdp), "answer"))
            assert "a=setup:passive" in answerer.localDescription.sdp
            transport = answerer.getTransceivers()[0].receiver.transport
            assert transport._role == "server"
        finally:
            await offerer.close()
            await answerer.close()

    run_async(run())


def test_ice_connection_internals_the_udp_mux_uses() -> None:
    """service.live.udpmux replaces how a connection gathers its host candidates and skips
    mDNS candidates; it builds StunProtocols on a shared socket and routes by ufrag and
    transaction."""
    connection = aioice.ice.Connection
    assert list(inspect.signature(connection.get_component_candidates).parameters) == [
        "self", "component", "addresses", "timeout"]
    assert list(inspect.signature(connection.add_remote_candidate).parameters) == [
        "self", "remote_candidate"]
    made = connection(ice_controlling=False)
    assert isinstance(made._protocols, list) and made.local_username
    protocol = aioice.ice.StunProtocol(made)
    assert protocol.transactions == {} and protocol.receiver is made
    for name in ("connection_made", "datagram_received", "connection_lost"):
        assert callable(getattr(protocol, name))


def test_codecs_are_chosen_from_preferences_set_before_the_offer() -> None:
    """live.codecs: aiortc takes a transceiver made before `setRemoteDescription` for the
    offer's section of its kind and picks its codecs there, from `find_common_codecs`
    filtered by the preferences; rooms read the pick from `transceiver._codecs`."""
    from aiortc import RTCSessionDescription
    from aiortc.rtcpeerconnection import find_common_codecs

    from service.live import codecs

    assert list(inspect.signature(find_common_codecs).parameters) == [
        "local_codecs", "remote_codecs"]
    source = inspect.getsource(RTCPeerConnection.setRemoteDescription)
    assert "transceiver._preferred_codecs" in source and "t.mid in [None" in source

    async def run() -> None:
        offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
        try:
            offerer.addTransceiver("video", direction="recvonly")
            await offerer.setLocalDescription(await offerer.createOffer())
            (media,) = codecs.media_of(offerer.localDescription.sdp)
            h264 = next(c for c in media.rtp.codecs if c.mimeType == "video/H264")
            made = answerer.addTransceiver("video", direction="sendonly")
            made.setCodecPreferences(codecs.choose(media, h264))
            await answerer.setRemoteDescription(RTCSessionDescription(
                offerer.localDescription.sdp, "offer"))
            assert answerer.getTransceivers() == [made]
            assert [c.mimeType for c in made._codecs] == ["video/H264", "video/rtx"]
        finally:
            await offerer.close()
            await answerer.close()

    run_async(run())


def test_the_receiver_internals_keyframe_requests_use() -> None:
    """forward.Fanout.attach wraps `_handle_rtp_packet(packet, arrival_time_ms)` to learn the
    media SSRC (packets whose payload type, in `__codecs`, is not RTX)."""
    async def run() -> None:
        pc = RTCPeerConnection()
        try:
            receiver = pc.addTransceiver("video").receiver
            assert isinstance(getattr(receiver, "_RTCRtpReceiver__codecs", None), dict)
            assert list(inspect.signature(receiver._handle_rtp_packet).parameters) == [
                "packet", "arrival_time_ms"]
        finally:
            await pc.close()

    run_async(run())
    from aiortc.rtcdtlstransport import RTCDtlsTransport
    source = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)" in source


def test_the_receiver_internals_the_publisher_rate_uses() -> None:
    """bitrate.Steering switches off the receiver's `__remote_bitrate_estimator` and sends
    its own REMB through `_send_rtcp` from `__rtcp_ssrc`."""
    async def run() -> None:
        pc = RTCPeerConnection()
        try:
            receiver = pc.addTransceiver("video").receiver
            assert hasattr(receiver, "_RTCRtpReceiver__remote_bitrate_estimator")
            assert hasattr(receiver, "_RTCRtpReceiver__rtcp_ssrc")
            assert inspect.iscoroutinefunction(receiver._send_rtcp)
        finally:
            await pc.close()

    run_async(run())
    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "if self.__remote_bitrate_estimator is not None:" in source


def test_an_offer_aiortc_cannot_parse_is_a_400_not_a_500() -> None:
    """aiortc's SDP parser asserts on a media line it can't read (an AssertionError, not a
    ValueError): `codecs.media_of` turns that into `malformed_sdp` too."""
    import pytest

    from service.errors import BadRequest
    from service.live import codecs

    with pytest.raises(BadRequest) as refused:
        codecs.media_of("v=0\r\nm=video 9 x\r\n")
    assert refused.value.code == "malformed_sdp"


def test_the_internals_the_shared_send_path_uses() -> None:
    """writer.RtpWriter keeps the sender's RTCP report counters (by their mangled names),
    answers NACKs in place of `_retransmit(seq)`, starts when the connection calls
    `send(parameters)` once DTLS is up, reads the DTLS transport's state, SRTP session and
    counters and the ICE connection's nominated pair, and packetizes with aiortc's
    payloaders (frames.packetize)."""
    from aiortc import RTCRtpSender
    from aiortc.rtcdtlstransport import RTCDtlsTransport, State
    from aiortc.rtcpeerconnection import RTCPeerConnection as Pc

    rtcp = inspect.getsource(RTCRtpSender._run_rtcp)
    for counter in ("packet_count", "octet_count", "ntp_timestamp", "rtp_timestamp"):
        assert f"{counter}=self.__{counter}" in rtcp, counter
    assert "await self._retransmit(seq)" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert list(inspect.signature(RTCRtpSender._retransmit).parameters) == [
        "self", "sequence_number"]
    connect = inspect.getsource(Pc._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    assert 'if dtlsTransport.state == "connected":' in connect
    assert "await transceiver.sender.send(self.__localRtp(transceiver))" in connect
    assert "self._tx_srtp.protect(data)" in inspect.getsource(RTCDtlsTransport._send_rtp)
    assert "self.transport.sendto(data, addr)" in inspect.getsource(
        aioice.ice.StunProtocol.send_data)
    assert isinstance(aioice.ice.CandidatePair.remote_addr, property)
    # the writer keeps the connection's `_nominated` dict: it is filled and cleared, never
    # replaced
    assert "self._nominated = " not in inspect.getsource(aioice.ice.Connection)

    async def run() -> None:
        pc = RTCPeerConnection()
        try:
            sender = pc.addTransceiver("video").sender
            counters = vars(sender)
            for counter in ("packet_count", "octet_count", "ntp_timestamp", "rtp_timestamp"):
                assert isinstance(counters[f"_RTCRtpSender__{counter}"], int), counter
            dtls = sender.transport
            assert dtls._state is State.NEW and hasattr(dtls, "_tx_srtp")
            assert isinstance(vars(dtls)["_RTCDtlsTransport__tx_bytes"], int)
            assert isinstance(vars(dtls)["_RTCDtlsTransport__tx_packets"], int)
            assert dtls.transport._connection._nominated == {}
        finally:
            await pc.close()

    run_async(run())
    assert list(inspect.signature(vpx.Vp8Encoder._packetize).parameters) == [
        "buffer", "picture_id"]
    first = vpx.Vp8Encoder._packetize(bytes(3000), 5)[0]
    assert first[:4] == b"\x90\x80\x80\x05"  # X S, I, M + 15-bit picture id
    assert callable(h264.H264Encoder._split_bitstream)
    assert callable(h264.H264Encoder._packetize)


def test_libsrtp_protects_in_place_as_pylibsrtp_does() -> None:
    """writer.RtpWriter calls libsrtp's `srtp_protect` through pylibsrtp's binding on a
    buffer of its own: the result is byte for byte what `Session.protect` gives."""
    from aiortc.rtp import RtpPacket
    from pylibsrtp import Policy, Session
    from pylibsrtp._binding import ffi, lib

    assert version("pylibsrtp").startswith("1.0."), version("pylibsrtp")
    key = bytes(range(30))
    public, ours = (Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
                    for _ in range(2))
    cdata = ffi.new("unsigned char[]", 1500)
    buffer, length = ffi.buffer(cdata), ffi.new("int *")
    for sequence in range(5):
        packet = RtpPacket(payload_type=96, sequence_number=sequence, timestamp=3000,
                           ssrc=0x1234, payload=bytes([sequence]) * 1200).serialize()
        buffer[0:len(packet)] = packet
        length[0] = len(packet)
        assert lib.srtp_protect(ours._srtp[0], cdata, length) == 0
        assert buffer[0:length[0]] == public.protect(packet)


def test_sender_history_retransmit_and_report_times_quality_uses() -> None:
    """quality.Padding sends recent packets again from the sender's RTP history through
    `_retransmit`; quality.Follow reads the last sender report's LSR and time for each
    receiver report's round trip. The receiver drops a packet more than MAX_MISORDER behind
    (and resets on older ones), which is why padding keeps to recent packets."""
    from aiortc import RTCRtpSender, jitterbuffer

    from service.live.quality import Padding

    assert inspect.iscoroutinefunction(RTCRtpSender._retransmit)
    assert list(inspect.signature(RTCRtpSender._retransmit).parameters) == [
        "self", "sequence_number"]
    source = inspect.getsource(RTCRtpSender)
    for name in ("self.__rtp_history[packet.sequence_number % RTP_HISTORY_SIZE]",
                 "self.__lsr = ", "self.__lsr_time = "):
        assert name in source, name
    assert Padding.RECENT < jitterbuffer.MAX_MISORDER

    async def run() -> None:
        pc = RTCPeerConnection()
        try:
            sender = pc.addTransceiver("video").sender
            assert isinstance(getattr(sender, "_RTCRtpSender__rtp_history", None), dict)
            assert hasattr(sender, "_RTCRtpSender__lsr")
            assert hasattr(sender, "_RTCRtpSender__lsr_time")
            assert hasattr(sender, "_RTCRtpSender__rtt")  # the writer spaces resends by it
        finally:
            await pc.close()

    run_async(run())
