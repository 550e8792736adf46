"""Live rooms in this process: one publisher (the host, or a guest on stage) and its viewers,
joined through WHIP and WHEP offers. Media is forwarded, never re-encoded (`forward.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, OperationError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from service.errors import ApiError, BadRequest, Conflict
from service.live import codecs, lowlayer
from service.live.channel import Channel
from service.live.dtls import as_dtls_server
from service.live.forward import Fanout, ForwardedTrack, relay_losses, signal_pauses
from service.live.lowlayer import LowLayer
from service.live.quality import Follow, Layer
from service.live.recorder import Recorder, Recording
from service.live.relay import LOW, STREAMS, EdgeFeed, Link, Outbound
from service.live.writer import Scratch, write_through
from service.settings import Settings

log = logging.getLogger("kumpul.live")


class RoomFull(ApiError):
    status = 503
    code = "room_full"


class NotLive(Conflict):
    code = "session_not_live"


def ice_configuration(settings: Settings) -> RTCConfiguration:
    """The server's own ICE: host candidates only (`KUMPUL_ICE_HOST_ADDRESSES`). The STUN
    and TURN servers are the clients' (`live/turn.py`): a client behind a strict NAT relays
    through TURN to these addresses, so the server allocates no relay of its own, and an
    unreachable STUN/TURN server delays no answer and no shutdown. (An empty list, not None:
    None would make aiortc query its default public STUN server.)"""
    del settings
    return RTCConfiguration(iceServers=[])


def _offer(sdp: str) -> RTCSessionDescription:
    if not sdp.strip().startswith("v=0"):
        raise BadRequest("The body must be an SDP offer (application/sdp).",
                         code="malformed_sdp")
    if not any(line.startswith(("m=audio ", "m=video ")) for line in sdp.splitlines()):
        raise BadRequest("The SDP offer has no audio or video to send or receive.",
                         code="malformed_sdp")
    return RTCSessionDescription(sdp=sdp, type="offer")


async def _answer(pc: RTCPeerConnection, offer: RTCSessionDescription,
                  prepare: Callable[[], None]) -> str:
    try:
        await pc.setRemoteDescription(offer)
    except (ValueError, KeyError, IndexError, InternalError, InvalidAccessError,
            OperationError) as exc:
        await pc.close()
        raise BadRequest("The SDP offer can't be used: %(detail)s.", code="malformed_sdp",
                         detail=str(exc)) from None
    prepare()
    answer = await pc.createAnswer()
    await pc.setLocalDescription(RTCSessionDescription(  # gathers candidates first
        as_dtls_server(offer.sdp, answer.sdp), "answer"))
    return pc.localDescription.sdp


SLOTS = ("host", "guest")  # who publishes: the host, and one member on stage
SILENT_SECONDS = 3.0  # a publisher sending nothing this long is gone (crashed, off the net)
CONNECT_SECONDS = 10.0  # ... counted from its first frame, or after this long without one


def _slot() -> dict[str, Fanout]:
    return {"video": Fanout("video"), "audio": Fanout("audio")}


@dataclass
class Publisher:
    pc: RTCPeerConnection
    resource: str
    by_key: bool = False  # came with the stream key (an encoder), not the studio page
    watchdog: asyncio.Task[None] | None = None


@dataclass
class Room:
    session_id: str
    config: RTCConfiguration
    max_viewers: int
    slots: dict[str, dict[str, Fanout]] = field(
        default_factory=lambda: {slot: _slot() for slot in SLOTS})
    publishers: dict[str, Publisher] = field(default_factory=dict)
    viewers: dict[str, RTCPeerConnection] = field(default_factory=dict)
    recorder: Recorder | None = None
    channel: Channel | None = None
    guest_recorders: list[Recorder] = field(default_factory=list)
    follows: dict[str, Follow] = field(default_factory=dict)  # each viewer's quality
    low: LowLayer | None = None  # made when a viewer first needs it
    node: str = ""  # this node's id: it names the node in resource ids (routing)
    origin: bool = False  # its publishers are here (else: an edge, fed by `feed`)
    feed: EdgeFeed | None = None  # an edge's relay from the origin
    edge_low: Fanout = field(default_factory=lambda: Fanout("video"))  # the origin's low
    relays: set[Outbound] = field(default_factory=set)  # an origin's edges
    admit: Callable[[Room], Awaitable[bool]] | None = None  # the cluster-wide viewer cap
    on_change: Callable[[Room], None] | None = None  # counts and state to the cluster
    forward_path: str = "shared"  # how frames reach viewers (`forward.py`, `writer.py`)
    scratch: Scratch = field(default_factory=Scratch)  # where its viewers' packets are made
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _rate_mark: tuple[float, int] = (0.0, 0)
    _host_bps: float = 0.0

    @property
    def fanouts(self) -> dict[str, Fanout]:
        """The host's video and audio."""
        return self.slots["host"]

    def __post_init__(self) -> None:
        for fanout in self.fanouts.values():  # players learn the codec to offer
            fanout.on_codec = self._changed

    def on_stage(self, slot: str) -> bool:
        if self.feed is not None:  # an edge: what the origin says
            return self.feed.live.get(slot, False)
        found = self.publishers.get(slot)
        return found is not None and found.pc.connectionState not in ("failed", "closed")

    @property
    def publishing(self) -> bool:
        return self.on_stage("host")

    def codecs(self) -> dict[str, str | None]:
        """What the host sends ("VP8", "H264", "opus"; None before the first frame): the
        codec a WHEP player must offer."""
        return {f"{kind}_codec": codecs.name(fanout.codec) if fanout.codec else None
                for kind, fanout in self.fanouts.items()}

    async def publish(self, sdp: str, slot: str = "host",
                      by_key: bool = False) -> tuple[str, str]:
        """WHIP: take a publisher's offer for `slot`; returns (answer SDP, resource id).
        The answer carries one codec per kind (`codecs.choose`): the offer's first, or
        for a guest on stage the host's; `by_key` says it came with the stream key."""
        offer = _offer(sdp)
        if self.on_stage(slot):
            raise Conflict("Someone is already publishing to this session.",
                           code="already_publishing",
                           hint="Stop the other stream (or DELETE its resource) first.")
        fanouts = self.slots[slot]
        plan: dict[str, list[RTCRtpCodecCapability]] = {}
        for media in codecs.media_of(offer.sdp):
            if media.kind in plan:
                continue  # a second picture or sound of one publisher: not taken
            if slot == "guest":  # the stage speaks the host's codec: viewers have it
                plan[media.kind] = codecs.choose(media, self.fanouts[media.kind].codec)
            else:  # keep what viewers already have where the offer allows it
                plan[media.kind] = codecs.choose(media, fanouts[media.kind].codec,
                                                 required=False)
        pc = RTCPeerConnection(self.config)
        publisher = self.publishers[slot] = Publisher(pc, self._resource(), by_key)
        taking = set()
        for kind, preferred in plan.items():
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(preferred)
            taking.add(transceiver)

        @pc.on("track")
        def on_track(track: object) -> None:
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            if transceiver in taking:
                fanouts[transceiver.kind].attach(transceiver.receiver)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.stop_publisher(slot, publisher.resource)

        def recvonly() -> None:
            for transceiver in pc.getTransceivers():
                transceiver.direction = "recvonly" if transceiver in taking else "inactive"

        try:
            answer = await _answer(pc, offer, recvonly)
        except BaseException:
            self.publishers.pop(slot, None)
            raise
        publisher.watchdog = asyncio.ensure_future(self._watch(slot, publisher))
        if slot == "host" and self.recorder is not None:
            self.recorder.attach(fanouts)
        elif slot == "guest" and self.recorder is not None:  # each stage turn: a file
            number = len(self.guest_recorders) + 1
            turn = Recorder(self.recorder.stem.with_name(f"{self.session_id}-guest-{number}"),
                            f"guest-{number}")
            turn.attach(fanouts)
            self.guest_recorders.append(turn)
        self._changed()
        self._tell({"type": "publisher", "slot": slot, "live": True})
        return answer, publisher.resource

    async def stop_publisher(self, slot: str = "host", resource: str | None = None) -> bool:
        """The publisher of `slot` leaves (its DELETE, a lost connection, a new stream key):
        viewers' players get a BYE and the room channel a `publisher` event; they stay and
        resume with the next publisher's first keyframe."""
        found = self.publishers.get(slot)
        if found is None or (resource is not None and resource != found.resource):
            return False
        del self.publishers[slot]
        if found.watchdog is not None and found.watchdog is not asyncio.current_task():
            found.watchdog.cancel()
        for fanout in self.slots[slot].values():
            fanout.detach()
        await found.pc.close()
        self._changed()
        self._tell({"type": "publisher", "slot": slot, "live": False})
        return True

    async def stop_keyed_publisher(self) -> bool:
        """A new stream key: the encoder that came with the old one stops at once."""
        found = self.publishers.get("host")
        return found is not None and found.by_key and await self.stop_publisher("host")

    async def _watch(self, slot: str, publisher: Publisher) -> None:
        """Release a publisher whose media stopped (an encoder that crashed without DELETE,
        a network gone) within `SILENT_SECONDS`, long before ICE consent (30 s) would."""
        began = time.monotonic()
        while self.publishers.get(slot) is publisher:
            await asyncio.sleep(0.5)
            last, now = max(f.frame_at for f in self.slots[slot].values()), time.monotonic()
            if (now - last > SILENT_SECONDS) if last > began else (
                    now - began > CONNECT_SECONDS):
                log.info("publisher silent, released", extra={"session": self.session_id,
                                                               "slot": slot})
                await self.stop_publisher(slot, publisher.resource)

    def publisher_slot(self, resource: str) -> str | None:
        return next((slot for slot, p in self.publishers.items() if p.resource == resource),
                    None)

    async def view(self, sdp: str) -> tuple[str, str]:
        """WHEP: take a viewer's offer; returns (answer SDP, resource id). The offer's first
        video and audio get the host; a second pair, if offered, gets whoever is on stage.
        Each is answered with its publisher's codec, or refused with 406 naming it."""
        offer = _offer(sdp)
        if not self.publishing or not any(f.codec for f in self.fanouts.values()):
            raise NotLive("The host isn't live yet.", hint="Try again when the session starts.",
                          headers={"Retry-After": "2"})
        if len(self.viewers) >= self.max_viewers or (
                self.admit is not None and not await self.admit(self)):
            raise RoomFull("This room is full.", hint="Try again in a few minutes.",
                           headers={"Retry-After": "30"})
        plan: list[tuple[Fanout, list[RTCRtpCodecCapability]]] = []
        taken: dict[str, int] = {}
        for media in codecs.media_of(offer.sdp):
            index = taken[media.kind] = taken.get(media.kind, -1) + 1
            if index < len(SLOTS):
                fanout = self.slots[SLOTS[index]][media.kind]
                # the stage has no codec of its own until someone is on it: the host's
                source = fanout if fanout.codec else self.fanouts[media.kind]
                plan.append((fanout, codecs.choose(media, source.codec)))
        pc = RTCPeerConnection(self.config)
        resource = self._resource()
        self.viewers[resource] = pc
        sending: list[tuple[RTCRtpTransceiver, Fanout]] = []
        for fanout, preferred in plan:  # before the offer: aiortc picks codecs as it reads it
            transceiver = pc.addTransceiver(fanout.kind, direction="sendonly")
            transceiver.setCodecPreferences(preferred)
            sending.append((transceiver, fanout))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.stop_viewer(resource)

        def attach() -> None:
            ours = {id(t) for t, _ in sending}
            for transceiver in pc.getTransceivers():
                if id(transceiver) not in ours:
                    transceiver.direction = "inactive"
            for transceiver, fanout in sending:
                track = fanout.add(codecs.name(transceiver._codecs[0]))
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
                relay_losses(transceiver.sender, track)
                signal_pauses(transceiver.sender, track)
                if self.forward_path == "shared":
                    write_through(transceiver.sender, track, self.scratch)
            host = [(t, f) for t, f in sending if f in self.fanouts.values()]
            video = next((t for t, f in host if f.kind == "video"), None)
            audio = next((t for t, f in host if f.kind == "audio"), None)
            if video is not None:
                self.follows[resource] = self._follow(
                    video.sender, audio.sender if audio else None)

        try:
            answer = await _answer(pc, offer, attach)
        except BaseException:
            self.viewers.pop(resource, None)
            follow = self.follows.pop(resource, None)
            if follow is not None:
                follow.close()
            self._changed()
            raise
        self._changed()
        return answer, resource

    def _resource(self) -> str:
        """A resource id that names this node, so any node routes its DELETE here."""
        token = secrets.token_urlsafe(12)
        return f"{self.node}.{token}" if self.node else token

    def _follow(self, video: RTCRtpSender, audio: RTCRtpSender | None) -> Follow:
        """Adaptive quality for a viewer of the host (`quality.py`)."""
        track = video.track
        assert isinstance(track, ForwardedTrack)

        def apply(layer: Layer) -> None:
            if layer == Layer.high:
                track.move_to(self.fanouts["video"])
            elif layer == Layer.low:  # from high, a move down: high's frames stop now
                track.move_to(self.low_fanout(), hold=track.source is self.fanouts["video"])
            else:
                track.move_to(None)

        def layer_bps(layer: Layer) -> float:
            return {Layer.high: self.host_bps, Layer.low: float(lowlayer.BITRATE)}.get(
                layer, 0.0)

        return Follow(video, audio, apply, layer_bps)

    def low_layer(self) -> LowLayer:
        if self.low is None:
            self.low = LowLayer(self.fanouts["video"])
        return self.low

    def low_fanout(self) -> Fanout:
        """The low layer viewers move to: made here at the origin, relayed to an edge."""
        return self.edge_low if self.feed is not None else self.low_layer().fanout

    def streams(self) -> list[Fanout]:
        """The fan-outs an edge's relay carries, in `relay.STREAMS` order (the low layer
        last, relayed only while asked)."""
        return [self.slots[slot][kind] for slot, kind in STREAMS if slot != "low"]

    def relay_state(self) -> dict[str, bool]:
        return {"host": self.publishing, "guest": self.on_stage("guest")}

    def relay(self) -> Outbound:
        """An edge's copy of this origin room's streams."""
        out = Outbound(self.streams(), self.low_fanout, self.relay_state)
        self.relays.add(out)
        out.open()
        return out

    def feed_from(self, connect: Callable[[], Awaitable[Link | None]],
                  on_ended: Callable[[], Awaitable[object]]) -> EdgeFeed:
        """Serve this room's viewers from an origin on another node."""
        if self.feed is None:
            fanouts = [*self.streams(), self.edge_low]
            fanouts[LOW].cheap_keyframes = True  # the origin's low layer makes them
            self.feed = EdgeFeed(fanouts, connect, on_ended, self._changed)
            self.feed.start()
        return self.feed

    async def stop_feed(self) -> None:
        if self.feed is not None:
            feed, self.feed = self.feed, None
            await feed.close()

    @property
    def host_bps(self) -> float:
        """The host's video rate over the last few seconds (bits per second)."""
        now, sent = time.monotonic(), self.fanouts["video"].bytes
        then, before = self._rate_mark
        if now - then >= 2.0:
            self._rate_mark = (now, sent)
            self._host_bps = (sent - before) * 8 / (now - then)
        return self._host_bps

    def quality(self, resource: str) -> dict[str, str] | None:
        """A viewer's layer and the ceiling it chose (None: no such viewer)."""
        follow = self.follows.get(resource)
        if follow is None:
            return None
        return {"layer": follow.quality.layer.value, "ceiling": follow.quality.ceiling.value}

    def choose_quality(self, resource: str, ceiling: Layer) -> dict[str, str] | None:
        follow = self.follows.get(resource)
        if follow is not None:
            follow.choose(ceiling)
        return self.quality(resource)

    async def stop_viewer(self, resource: str) -> bool:
        pc = self.viewers.pop(resource, None)
        follow = self.follows.pop(resource, None)
        if follow is not None:
            follow.close()
        if pc is None:
            return False
        for transceiver in pc.getTransceivers():
            track = transceiver.sender.track
            if track is not None:
                track.stop()
        await pc.close()
        self._changed()
        return True

    async def close(self, ended: bool = True) -> list[Recording]:
        """Everyone leaves; returns the finished recordings: the host's first, then each
        guest's turn on stage (only those with anything in them). `ended`: the session
        ended (its edges end their rooms too), else this node stops."""
        for resource in list(self.viewers):
            await self.stop_viewer(resource)
        for slot in SLOTS:
            await self.stop_publisher(slot)
            for fanout in self.slots[slot].values():
                fanout.end()
        if self.low is not None:
            self.low.close()
        for relay in tuple(self.relays):
            relay.close(ended=ended)
        self.relays.clear()
        await self.stop_feed()
        made = [r.close() for r in ([self.recorder] if self.recorder else [])
                + self.guest_recorders]
        return [recording for recording in made if recording is not None]

    def _changed(self) -> None:
        """The live viewer count (and whether the host sends), to everyone in the room
        (through `on_change` in a cluster: the count over every node) and to its edges."""
        for relay in tuple(self.relays):
            if relay.closed:
                self.relays.discard(relay)
            else:
                relay.state_changed()
        if self.on_change is not None:
            self.on_change(self)
        else:
            self.announce(len(self.viewers))

    def announce(self, count: int) -> None:
        self._tell({"type": "viewers", "count": count, "live": self.publishing,
                    "stage": self.on_stage("guest"), **self.codecs()})

    def _tell(self, message: dict[str, object]) -> None:
        if self.channel is not None:
            task = asyncio.ensure_future(self.channel.broadcast(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


class Rooms:
    """Every room this process hosts."""

    def __init__(self, settings: Settings) -> None:
        self.config = ice_configuration(settings)
        self.max_viewers = settings.live_max_viewers
        self.forward_path = settings.forward_path
        self.recordings = settings.data_dir / "recordings"
        self._rooms: dict[str, Room] = {}
        self.adopt: Callable[[Room], None] | None = None  # a new room joins the cluster
        self.on_end: Callable[[Room], Awaitable[None]] | None = None

    def get(self, session_id: str) -> Room:
        room = self._rooms.get(session_id)
        if room is None:
            room = self._rooms[session_id] = Room(
                session_id, self.config, self.max_viewers,
                recorder=Recorder(self.recordings / session_id),
                forward_path=self.forward_path)
            if self.adopt is not None:
                self.adopt(room)
        return room

    def all(self) -> list[Room]:
        return list(self._rooms.values())

    def find(self, session_id: str) -> Room | None:
        return self._rooms.get(session_id)

    async def end(self, session_id: str, ended: bool = True) -> list[Recording]:
        """The session ended: everyone in the room is told, then it closes; returns its
        recordings (the host's first). (`ended` False: this node stops.)"""
        room = self._rooms.pop(session_id, None)
        if room is None:
            return []
        if room.channel is not None:
            await room.channel.broadcast({"type": "ended"})
        made = await room.close(ended)
        if self.on_end is not None:
            await self.on_end(room)
        return made

    async def close(self) -> None:
        for session_id in list(self._rooms):
            with contextlib.suppress(Exception):
                await self.end(session_id, ended=False)
