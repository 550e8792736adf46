"""A WHIP encoder in a thread of its own (an aiortc publisher, like OBS would be): it
publishes a moving picture and sound in a chosen codec until told to stop, so that browser
tests (Playwright's sync API in the main thread) can watch it."""

from __future__ import annotations

import asyncio
import threading

import httpx2 as httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from tests.live.test_forward import MovingPicture, prefer


class Encoder:
    def __init__(self, whip_url: str, token: str, codec: str = "H264",
                 size: tuple[int, int] = (320, 240)) -> None:
        self.whip_url, self.token, self.codec, self.size = whip_url, token, codec, size
        self.status = 0
        self.location = ""
        self._published = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)

    def __enter__(self) -> Encoder:
        self._thread.start()
        assert self._published.wait(30), "the encoder never got an answer"
        assert self.status == 201, self.status
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, delete: bool = True) -> None:
        """Stop sending; with `delete` the WHIP resource is deleted first (a clean stop),
        without it the encoder just goes silent (a crash)."""
        self.delete = delete
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(20)

    async def _run(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self.delete = True
        pc = RTCPeerConnection()
        pc.addTrack(MovingPicture(*self.size))
        pc.addTrack(AudioStreamTrack())
        prefer(pc, "video", self.codec)
        auth = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(timeout=20) as client:
            try:
                await pc.setLocalDescription(await pc.createOffer())
                answer = await client.post(self.whip_url, content=pc.localDescription.sdp,
                                           headers={"Content-Type": "application/sdp", **auth})
                self.status = answer.status_code
                if answer.status_code == 201:
                    self.location = answer.headers["location"]
                    await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
            finally:
                self._published.set()
            await self._stop.wait()
            if self.delete and self.location:
                base = self.whip_url.split("/api/", 1)[0]
                await client.delete(base + self.location, headers=auth)
        if self.delete:
            await pc.close()
        else:  # a crash: no DTLS close, no BYE; the process just stops sending
            for transceiver in pc.getTransceivers():
                await transceiver.sender.stop()
