"""Live rooms in this process: one publisher (the host, or a guest on stage) and its viewers,
joined through WHIP and WHEP offers. Media is forwarded, never re-encoded (`forward.py`)."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from service.errors import ApiError, BadRequest, Conflict
from service.live.forward import Fanout, relay_losses
from service.live.recorder import Recorder
from service.settings import Settings

log = logging.getLogger("kumpul.live")


class RoomFull(ApiError):
    status = 503
    code = "room_full"


class NotLive(Conflict):
    code = "session_not_live"


def ice_configuration(settings: Settings) -> RTCConfiguration:
    servers = [RTCIceServer(urls=url, username=settings.turn_username or None,
                            credential=settings.turn_credential or None)
               if url.startswith("turn") else RTCIceServer(urls=url)
               for url in settings.ice_servers]
    return RTCConfiguration(iceServers=servers)


def _offer(sdp: str) -> RTCSessionDescription:
    if not sdp.strip().startswith("v=0"):
        raise BadRequest("The body must be an SDP offer (application/sdp).",
                         code="malformed_sdp")
    return RTCSessionDescription(sdp=sdp, type="offer")


async def _answer(pc: RTCPeerConnection, offer: RTCSessionDescription,
                  prepare: Callable[[], None]) -> str:
    try:
        await pc.setRemoteDescription(offer)
    except (ValueError, KeyError, IndexError) as exc:
        await pc.close()
        raise BadRequest(f"The SDP offer can't be used: {exc}.", code="malformed_sdp") from None
    prepare()
    await pc.setLocalDescription(await pc.createAnswer())  # gathers candidates first
    return pc.localDescription.sdp


@dataclass
class Room:
    session_id: str
    config: RTCConfiguration
    max_viewers: int
    publisher: RTCPeerConnection | None = None
    publisher_id: str | None = None
    fanouts: dict[str, Fanout] = field(default_factory=dict)
    viewers: dict[str, RTCPeerConnection] = field(default_factory=dict)
    on_change: Callable[[Room], None] | None = None
    recorder: Recorder | None = None

    @property
    def publishing(self) -> bool:
        return self.publisher is not None and self.publisher.connectionState not in (
            "failed", "closed")

    async def publish(self, sdp: str) -> tuple[str, str]:
        """WHIP: take the publisher's offer; returns (answer SDP, resource id)."""
        offer = _offer(sdp)
        if self.publishing:
            raise Conflict("Someone is already publishing to this session.",
                           code="already_publishing",
                           hint="Stop the other stream (or DELETE its resource) first.")
        pc = RTCPeerConnection(self.config)
        self.publisher, self.publisher_id = pc, secrets.token_urlsafe(12)
        self.fanouts = {}

        @pc.on("track")
        def on_track(track: object) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers()
                            if t.receiver.track is track)
            self.fanouts[receiver.track.kind] = Fanout.tap(receiver)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self.publisher is pc:
                await self.stop_publisher()

        def recvonly() -> None:
            for transceiver in pc.getTransceivers():
                transceiver.direction = "recvonly"

        answer = await _answer(pc, offer, recvonly)
        if self.recorder is not None:
            self.recorder.attach(self.fanouts)
        self._changed()
        return answer, self.publisher_id

    async def stop_publisher(self, resource: str | None = None) -> bool:
        if self.publisher is None or (resource is not None and resource != self.publisher_id):
            return False
        pc, self.publisher, self.publisher_id = self.publisher, None, None
        for fanout in self.fanouts.values():
            fanout.end()
        await pc.close()
        self._changed()
        return True

    async def view(self, sdp: str) -> tuple[str, str]:
        """WHEP: take a viewer's offer; returns (answer SDP, resource id)."""
        offer = _offer(sdp)
        if not self.publishing or not self.fanouts \
                or not all(f.codec for f in self.fanouts.values()):
            raise NotLive("The host isn't live yet.", hint="Try again when the session starts.",
                          headers={"Retry-After": "2"})
        if len(self.viewers) >= self.max_viewers:
            raise RoomFull("This room is full.", hint="Try again in a few minutes.",
                           headers={"Retry-After": "30"})
        pc = RTCPeerConnection(self.config)
        resource = secrets.token_urlsafe(12)
        self.viewers[resource] = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.stop_viewer(resource)

        def attach() -> None:
            for transceiver in pc.getTransceivers():
                fanout = self.fanouts.get(transceiver.kind)
                if fanout is None:
                    transceiver.direction = "inactive"
                    continue
                transceiver.setCodecPreferences(_same_codec(fanout, transceiver.kind))
                track = fanout.add()
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
                relay_losses(transceiver.sender, track)

        try:
            answer = await _answer(pc, offer, attach)
        except BaseException:
            self.viewers.pop(resource, None)
            raise
        self._changed()
        return answer, resource

    async def stop_viewer(self, resource: str) -> bool:
        pc = self.viewers.pop(resource, None)
        if pc is None:
            return False
        for transceiver in pc.getTransceivers():
            track = transceiver.sender.track
            if track is not None:
                track.stop()
        await pc.close()
        self._changed()
        return True

    async def close(self) -> Path | None:
        """Everyone leaves; returns the finished recording, if anything was recorded."""
        for resource in list(self.viewers):
            await self.stop_viewer(resource)
        await self.stop_publisher()
        return self.recorder.close() if self.recorder is not None else None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)


def _same_codec(fanout: Fanout, kind: str) -> list[RTCRtpCodecCapability]:
    """Viewers get exactly the publisher's codec: nothing is transcoded."""
    found = RTCRtpReceiver.getCapabilities(kind)
    codec = fanout.codec
    if codec is None or found is None:
        return []
    capabilities = found.codecs
    same = [c for c in capabilities if c.mimeType.lower() == codec.mimeType.lower()]
    exact = [c for c in same if all(c.parameters.get(k) == v for k, v in codec.parameters.items()
                                    if k in ("profile-level-id", "packetization-mode"))]
    return exact or same


class Rooms:
    """Every room this process hosts."""

    def __init__(self, settings: Settings) -> None:
        self.config = ice_configuration(settings)
        self.max_viewers = settings.live_max_viewers
        self.recordings = settings.data_dir / "recordings"
        self._rooms: dict[str, Room] = {}

    def get(self, session_id: str) -> Room:
        room = self._rooms.get(session_id)
        if room is None:
            room = self._rooms[session_id] = Room(
                session_id, self.config, self.max_viewers,
                recorder=Recorder(self.recordings / f"{session_id}.webm"))
        return room

    def find(self, session_id: str) -> Room | None:
        return self._rooms.get(session_id)

    async def end(self, session_id: str) -> Path | None:
        """Close the room; returns its recording file, if any."""
        room = self._rooms.pop(session_id, None)
        return await room.close() if room is not None else None

    async def close(self) -> None:
        for session_id in list(self._rooms):
            with contextlib.suppress(Exception):
                await self.end(session_id)

    @property
    def peer_count(self) -> int:
        return sum(len(r.viewers) + (1 if r.publisher else 0) for r in self._rooms.values())
