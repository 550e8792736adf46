"""A WHEP viewer as a program of its own, to run inside a network namespace behind a shaped
link (`tests.netns.ShapedLink`): it decodes what it gets and prints one JSON line a second
with its counts so far (frames, keyframes, freezes, audio frames, connection state).

    python -m tests.live.netviewer WHEP_URL SECONDS [BEARER]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from service.live.forward import is_keyframe

FREEZE_SECONDS = 0.5  # a picture held this long is a freeze
MISSING_KEPT = 30.0  # a missing packet is counted outstanding this long at most


class Counts:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.frames = self.keys = self.freezes = self.audio = 0
        self.first_frame: float | None = None
        self.last_frame: float | None = None
        self.height = 0

    def picture(self, frame: Any) -> None:
        now = time.monotonic()
        if self.first_frame is None:
            self.first_frame = now - self.started
        elif self.last_frame is not None and now - self.last_frame > FREEZE_SECONDS:
            self.freezes += 1
        self.last_frame = now
        self.frames += 1
        self.height = frame.height


def count_keyframes(receiver: RTCRtpReceiver, counted: Callable[[], None]) -> None:
    """Call `counted` for each keyframe the receiver re-assembles (aiortc's VP8 decoder
    doesn't mark decoded pictures as key frames, so they are counted encoded)."""
    decoder_queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
    put = decoder_queue.put

    def counting(item: Any, *args: Any, **kwargs: Any) -> None:
        if item is not None and is_keyframe(item[0].name, item[1].data):
            counted()
        put(item, *args, **kwargs)

    decoder_queue.put = counting


async def read(track: Any, counts: Counts) -> None:
    try:
        while True:
            frame = await track.recv()
            if track.kind == "video":
                counts.picture(frame)
            else:
                counts.audio += 1
    except MediaStreamError:
        return


def watch_sequence(receiver: RTCRtpReceiver) -> dict[str, float]:
    """What arrives on the video's media stream, as the receiver counts it: packets, the
    highest sequence number's distance from the first, and jumps of more than 100 numbers
    forward (which a receiver reads as loss though nothing was lost on the way); and the
    packets it misses: how many are outstanding, the oldest one's age (s), how many came
    again on the RTX stream and the longest such wait (s). A missing packet is forgotten
    after `MISSING_KEPT` seconds."""
    seen: dict[str, float] = {"packets": 0, "span": 0, "jumps": 0, "late": 0,
                              "outstanding": 0, "oldest": 0.0, "repaired": 0,
                              "worst_wait": 0.0}
    handle = receiver._handle_rtp_packet
    state: dict[str, int] = {}
    missing: dict[int, float] = {}  # sequence number -> when its gap was seen

    async def counting(packet: Any, arrival_time_ms: int) -> None:
        now = time.monotonic()
        if packet.payload_type != 0 and "ssrc" not in state:
            state["ssrc"], state["first"], state["top"] = (
                packet.ssrc, packet.sequence_number, packet.sequence_number)
        if packet.ssrc == state.get("ssrc"):
            seen["packets"] += 1
            missing.pop(packet.sequence_number, None)
            ahead = (packet.sequence_number - state["top"]) & 0xFFFF
            if 0 < ahead < 0x8000:
                if ahead > 100:
                    seen["jumps"] += 1
                for step in range(1, min(ahead, 100)):
                    missing[(state["top"] + step) & 0xFFFF] = now
                state["top"] = packet.sequence_number
                seen["span"] += ahead
            elif ahead:
                seen["late"] += 1
        elif "ssrc" in state and len(packet.payload) >= 2:  # RTX: the original's number
            waited = missing.pop(int.from_bytes(packet.payload[:2], "big"), None)
            if waited is not None:
                seen["repaired"] += 1
                seen["worst_wait"] = max(seen["worst_wait"], round(now - waited, 2))
        for number in [n for n, at in missing.items() if now - at > MISSING_KEPT]:
            del missing[number]
        seen["outstanding"] = len(missing)
        seen["oldest"] = round(now - min(missing.values()), 2) if missing else 0.0
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = counting  # type: ignore[method-assign]
    return seen


async def main(url: str, seconds: float, token: str | None) -> None:
    counts = Counts()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: host candidates
    video = pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")

    def keyframe() -> None:
        counts.keys += 1

    count_keyframes(video.receiver, keyframe)
    seen = watch_sequence(video.receiver)
    tasks: list[asyncio.Task[None]] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        tasks.append(asyncio.ensure_future(read(track, counts)))

    await pc.setLocalDescription(await pc.createOffer())
    counts.started = time.monotonic()  # first frames count from the WHEP request
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=20) as client:
        answer = await client.post(url, content=pc.localDescription.sdp, headers=headers)
    if answer.status_code != 201:
        print(json.dumps({"error": answer.status_code, "body": answer.text}), flush=True)
        return
    await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    location = answer.headers.get("location", "")
    while time.monotonic() - counts.started < seconds:
        await asyncio.sleep(1.0)
        print(json.dumps({
            "t": round(time.monotonic() - counts.started, 2), "frames": counts.frames,
            "keys": counts.keys, "freezes": counts.freezes, "audio": counts.audio,
            "height": counts.height, "first_frame": counts.first_frame,
            "state": pc.connectionState, "location": location, "rtp": seen}), flush=True)
    await pc.close()
    for task in tasks:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3
                     else None))
