// Live rooms from the browser: WHIP to publish, WHEP to watch, and the room channel.
import { ApiError, csrf } from "./api.js";
import { lang, t, zone } from "./i18n.js";

function iceServers() {
  try { return JSON.parse(document.querySelector("[data-ice]")?.dataset.ice || "[]"); } catch { return []; }
}

function gathered(pc, ms = 2000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms); // send what we have; the server's answer carries its own
  });
}

// Put `name` ("VP8", "H264") first; `only` leaves the other codecs out (RTX stays: the
// server asks for keyframes on the media SSRC and retransmissions help on a lossy link).
function preferCodec(transceiver, name, only, capabilities) {
  const codecs = capabilities?.codecs || [];
  const wanted = `video/${name}`.toLowerCase();
  const first = codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  const rest = codecs.filter((c) => c.mimeType.toLowerCase() !== wanted
    && (!only || c.mimeType.toLowerCase() === "video/rtx"));
  if (first.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences([...first, ...rest]);
}

async function exchange(url, pc, headers) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin", body: pc.localDescription.sdp,
    headers: { "Content-Type": "application/sdp", "X-CSRF-Token": csrf, ...headers },
  });
  if (!response.ok) {
    pc.close();
    throw new ApiError(response.status, await response.json().catch(() => null));
  }
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  return response.headers.get("Location");
}

// Publish `stream` over WHIP in `codec` (the studio: VP8; a guest on stage: the host's).
export async function publish(url, stream, headers = {}, codec = "VP8") {
  const pc = new RTCPeerConnection({ iceServers: iceServers() });
  for (const track of stream.getTracks()) {
    const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    if (track.kind === "video") preferCodec(transceiver, codec, true, RTCRtpSender.getCapabilities("video"));
  }
  const location = await exchange(url, pc, headers);
  return { pc, location, stop: () => stop(pc, location, headers) };
}

// Watch over WHEP, offering every codec the browser decodes, `codec` (what the session
// sends, when known) first: the server answers with the publisher's codec.
export async function watch(url, onStreams, codec = null) {
  const pc = new RTCPeerConnection({ iceServers: iceServers() });
  const slots = [new MediaStream(), new MediaStream()]; // the host, whoever is on stage
  for (let i = 0; i < 2; i += 1) {
    const video = pc.addTransceiver("video", { direction: "recvonly" });
    if (codec) preferCodec(video, codec, false, RTCRtpReceiver.getCapabilities("video"));
    pc.addTransceiver("audio", { direction: "recvonly" });
  }
  pc.addEventListener("track", (event) => {
    const index = pc.getTransceivers().indexOf(event.transceiver);
    slots[index < 2 ? 0 : 1].addTrack(event.track);
    onStreams(slots);
  });
  const location = await exchange(url, pc, {});
  return { pc, location, stop: () => stop(pc, location, {}) };
}

async function stop(pc, location, headers) {
  pc.close();
  if (location) {
    await fetch(location, { method: "DELETE", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, ...headers } }).catch(() => {});
  }
}

export function channel(sessionId, onMessage) {
  let socket;
  let closed = false;
  const open = () => {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}/api/live/${sessionId}/room`);
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (!closed && event.code < 4000) setTimeout(open, 2000); // reconnect unless refused
      else onMessage({ type: "closed", code: event.code, reason: event.reason });
    });
  };
  open();
  return {
    send: (message) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(message)),
    close: () => { closed = true; socket.close(); },
  };
}

// "19.05" or "7:05 PM": a chat line's time of day in the reader's zone
const clock = new Intl.DateTimeFormat(lang, { timeZone: zone, hour: "numeric", minute: "2-digit" });

export function chatItem(list, message, canModerate, onDelete) {
  const item = document.createElement("li");
  item.dataset.id = message.id;
  const at = new Date(message.at || Date.now());
  const stamp = document.createElement("time");
  stamp.className = "chat-time";
  stamp.dateTime = at.toISOString();
  stamp.textContent = clock.format(at);
  const who = document.createElement("strong");
  who.textContent = `${message.name}: `;
  item.append(stamp, " ", who, document.createTextNode(message.text));
  if (canModerate) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link small";
    remove.textContent = t("Delete");
    remove.addEventListener("click", () => onDelete(message));
    item.append(" ", remove);
  }
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

export function floatReaction(target, emoji) {
  const bubble = document.createElement("span");
  bubble.className = "reaction-bubble";
  bubble.textContent = emoji;
  bubble.style.left = `${10 + Math.random() * 70}%`;
  target.append(bubble);
  setTimeout(() => bubble.remove(), 2500);
}

// "1:02:03" or "4:05": time on air
export function elapsed(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// Until a moment: "in 3 days" when far, a ticking "2:14:05" within a day, null once it passed.
export function untilText(iso, now = Date.now()) {
  const left = new Date(iso).getTime() - now;
  if (left <= 0) return null;
  if (left >= 86_400_000) {
    const days = Math.round(left / 86_400_000);
    return new Intl.RelativeTimeFormat(lang, { numeric: "auto" }).format(days, "day");
  }
  return t("in %(clock)s", { clock: elapsed(left) });
}

// Every second, `draw()`; returns the stop function. The text changes quietly (role=timer).
export function ticking(draw) {
  draw();
  const every = setInterval(draw, 1000);
  return () => clearInterval(every);
}
