"""A WHIP publisher made of GStreamer's webrtcbin, as Debian 12 ships it (GStreamer 1.22:
DTLS with an RSA certificate). Run with Debian's python3 (python3-gi), not the project's
virtual environment:

    /usr/bin/python3 tests/live/gst_whip.py WHIP_URL TOKEN SECONDS [LOCAL_ADDRESS]

Publishes a moving test picture (VP8) and a tone (Opus) for SECONDS after the DTLS
connection is up, then DELETEs its resource. LOCAL_ADDRESS limits its ICE candidates to that
address (libnice leaves out 127.0.0.1 unless told). Prints `connected` when ICE and DTLS are
through, `dtls-failed` (and exits 3) when they are not; exits 0 after a clean run.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

PIPELINE = """
webrtcbin name=send bundle-policy=max-bundle
videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1
  ! vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=300000 ! rtpvp8pay pt=96
  ! application/x-rtp,media=video,encoding-name=VP8,payload=96 ! send.
audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc
  ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! send.
"""


class Publisher:
    def __init__(self, url: str, token: str, seconds: float, local: str | None) -> None:
        self.url, self.token, self.seconds = url, token, seconds
        self.loop = GLib.MainLoop()
        self.pipe = Gst.parse_launch(PIPELINE)
        self.webrtc = self.pipe.get_by_name("send")
        self.ice = self.webrtc.get_property("ice-agent")  # kept: the bin owns it
        if local is not None:
            address = Nice.Address.new()
            address.set_from_string(local)
            self.ice.get_property("agent").add_local_address(address)
        self.resource: str | None = None
        self.status = 1
        self.webrtc.connect("on-negotiation-needed", self.negotiate)
        self.webrtc.connect("notify::ice-gathering-state", self.gathered)
        self.webrtc.connect("notify::connection-state", self.connection)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.error)

    def run(self) -> int:
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add_seconds(int(self.seconds) + 30, self.give_up)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return self.status

    def negotiate(self, element: Gst.Element) -> None:
        for transceiver in self._transceivers():
            transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        promise = Gst.Promise.new_with_change_func(self.offered, element, None)
        element.emit("create-offer", None, promise)

    def _transceivers(self) -> list[GstWebRTC.WebRTCRTPTransceiver]:
        found, index = [], 0
        while (transceiver := self.webrtc.emit("get-transceiver", index)) is not None:
            found.append(transceiver)
            index += 1
        return found

    def offered(self, promise: Gst.Promise, element: Gst.Element, _: object) -> None:
        promise.wait()
        reply = promise.get_reply()  # keep it referenced: it owns the offer
        offer = reply.get_value("offer")
        element.emit("set-local-description", offer, Gst.Promise.new())

    def gathered(self, element: Gst.Element, _: object) -> None:
        complete = GstWebRTC.WebRTCICEGatheringState.COMPLETE
        if element.get_property("ice-gathering-state") != complete:
            return
        sdp = element.get_property("local-description").sdp.as_text()
        request = urllib.request.Request(  # noqa: S310 (http:// URLs of the test's server)
            self.url, data=sdp.encode(), method="POST", headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                answer = response.read().decode()
                self.resource = urllib.parse.urljoin(self.url, response.headers["Location"])
        except urllib.error.HTTPError as exc:
            print(f"whip-refused {exc.code} {exc.read().decode()}", flush=True)
            self.status = 2
            self.loop.quit()
            return
        except OSError as exc:
            print(f"whip-unreachable {exc}", flush=True)
            self.status = 2
            self.loop.quit()
            return
        _, parsed = GstSdp.SDPMessage.new_from_text(answer)
        description = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, parsed)
        element.emit("set-remote-description", description, Gst.Promise.new())

    def connection(self, element: Gst.Element, _: object) -> None:
        state = element.get_property("connection-state")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            print("connected", flush=True)
            GLib.timeout_add(int(self.seconds * 1000), self.finish)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            print("dtls-failed", flush=True)
            self.status = 3
            self.loop.quit()

    def finish(self) -> bool:
        if self.resource is not None:
            request = urllib.request.Request(self.resource, method="DELETE",  # noqa: S310
                                             headers={"Authorization": f"Bearer {self.token}"})
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                pass
        self.status = 0
        self.loop.quit()
        return False

    def give_up(self) -> bool:
        print("timed-out", flush=True)
        self.status = 4
        self.loop.quit()
        return False

    def error(self, _: Gst.Bus, message: Gst.Message) -> None:
        error, debug = message.parse_error()
        print(f"gstreamer-error {error.message} {debug}", flush=True)
        self.status = 5
        self.loop.quit()


if __name__ == "__main__":
    Gst.init(None)
    whip_url, publish_token, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
    local_address = sys.argv[4] if len(sys.argv) > 4 else None
    sys.exit(Publisher(whip_url, publish_token, duration, local_address).run())
