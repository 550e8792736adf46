// Host studio: backstage (camera preview, device pickers, microphone level), go live (WHIP),
// mute and hide while live, time on air and viewer count, chat, reactions, hands, stage,
// and ending the session behind a confirmation.
import { api, showError } from "./api.js";
import { channel, chatItem, elapsed, floatReaction, publish, ticking, untilText, watch } from "./live.js";
import { label, t } from "./i18n.js";

const root = document.getElementById("studio");
const slug = root.dataset.community;
const sessionId = root.dataset.session;
const $ = (id) => document.getElementById(id);
const problem = $("problem");
let stream = null;
let live = null;
let stageView = null;
let meter = null;
let stopClock = null;

// Quality presets: the camera's size and the most the encoder may send.
const PRESETS = {
  720: { video: { width: 1280, height: 720, frameRate: 30 }, maxBitrate: 2_500_000 },
  480: { video: { width: 640, height: 480, frameRate: 30 }, maxBitrate: 1_000_000 },
};
const preset = () => PRESETS[$("quality")?.value] || PRESETS[720];

async function applyPreset() {
  const chosen = preset();
  const track = stream?.getVideoTracks()[0];
  if (track) await track.applyConstraints(chosen.video).catch(() => {});
  const video = live?.pc.getSenders().find((s) => s.track?.kind === "video");
  if (video) {
    const parameters = video.getParameters();
    for (const encoding of parameters.encodings || []) encoding.maxBitrate = chosen.maxBitrate;
    await video.setParameters(parameters).catch(() => {});
  }
}

// --- the microphone level: an analyser on the outgoing audio, drawn on a <meter> ---------------
function listen(audioTrack) {
  if (meter) { meter.context.close(); meter = null; }
  if (!audioTrack || !window.AudioContext) return;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(new MediaStream([audioTrack])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  meter = { context };
  let shown = 0;
  const draw = () => {
    if (!meter || meter.context !== context) return;
    analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const v of samples) peak = Math.max(peak, Math.abs(v));
    // a level people read: -60 dBFS at the bottom, 0 at the top; it rises at once and falls
    // back over about a second, as a peak meter's needle does, so short sounds are seen
    const level = audioTrack.enabled ? Math.max(0, 1 + (20 * Math.log10(peak || 1e-6)) / 60) : 0;
    shown = Math.max(level, shown - 0.02);
    $("mic-level").value = shown;
    requestAnimationFrame(draw);
  };
  context.resume().catch(() => {});
  draw();
}

// --- devices ----------------------------------------------------------------------------------
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (select, kind, current) => {
    const found = devices.filter((d) => d.kind === kind);
    select.replaceChildren(...found.map((d, i) => {
      const option = document.createElement("option");
      option.value = d.deviceId;
      option.textContent = d.label || (kind === "videoinput"
        ? t("Camera %(n)s", { n: i + 1 }) : t("Microphone %(n)s", { n: i + 1 }));
      option.selected = d.deviceId === current;
      return option;
    }));
    select.disabled = found.length < 2;
  };
  fill($("camera-device"), "videoinput", stream.getVideoTracks()[0]?.getSettings().deviceId);
  fill($("mic-device"), "audioinput", stream.getAudioTracks()[0]?.getSettings().deviceId);
}

// Swap one kind of track for a new device's, on the preview and (when live) on the air.
async function useDevice(kind, deviceId) {
  const constraints = kind === "video"
    ? { video: { ...preset().video, deviceId: { exact: deviceId } } }
    : { audio: { deviceId: { exact: deviceId } } };
  try {
    const fresh = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
    const old = kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    fresh.enabled = old ? old.enabled : true;
    const onAir = live?.pc.getSenders().find((s) => s.track === old);
    if (onAir) await onAir.replaceTrack(fresh);
    if (old) { stream.removeTrack(old); old.stop(); }
    stream.addTrack(fresh);
    $("preview").srcObject = stream;
    if (kind === "audio") listen(fresh);
  } catch (error) {
    showError(problem, { message: t("That device can't be used."), hint: error.message });
  }
}

$("quality")?.addEventListener("change", applyPreset);
$("camera-device")?.addEventListener("change", (e) => useDevice("video", e.target.value));
$("mic-device")?.addEventListener("change", (e) => useDevice("audio", e.target.value));

$("camera")?.addEventListener("click", async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: preset().video, audio: true });
  } catch (error) {
    showError(problem, { message: t("The camera or microphone can't be used."), hint: error.message });
    return;
  }
  problem.hidden = true;
  $("preview").srcObject = stream;
  $("backstage-cover").hidden = true;
  $("controls").hidden = false;
  listen(stream.getAudioTracks()[0]);
  await listDevices().catch(() => {});
  $("go-live").focus();
});

// --- mute and hide: the track keeps its place on the connection and sends silence or black ----
function showToggles() {
  const mic = stream?.getAudioTracks()[0];
  const cam = stream?.getVideoTracks()[0];
  const micOn = Boolean(mic?.enabled);
  const camOn = Boolean(cam?.enabled);
  $("toggle-mic").textContent = micOn ? t("Mute microphone") : t("Unmute microphone");
  $("toggle-mic").classList.toggle("off", !micOn);
  $("toggle-cam").textContent = camOn ? t("Hide camera") : t("Show camera");
  $("toggle-cam").classList.toggle("off", !camOn);
  $("camera-hidden").hidden = camOn;
}
$("toggle-mic")?.addEventListener("click", () => {
  const mic = stream?.getAudioTracks()[0];
  if (mic) mic.enabled = !mic.enabled;
  showToggles();
});
$("toggle-cam")?.addEventListener("click", () => {
  const cam = stream?.getVideoTracks()[0];
  if (cam) cam.enabled = !cam.enabled;
  showToggles();
});

// --- on air -----------------------------------------------------------------------------------
function onAir(since) {
  $("live-state").textContent = label("live");
  $("live-state").dataset.state = "live";
  $("elapsed").hidden = false;
  $("starts")?.remove();
  if (stopClock) stopClock();
  stopClock = ticking(() => { $("elapsed").textContent = elapsed(Date.now() - since); });
}

$("go-live")?.addEventListener("click", async () => {
  problem.hidden = true;
  $("go-live").disabled = true;
  try {
    live = await publish(`/api/live/${sessionId}/whip`, stream);
    await applyPreset();
    $("go-live").hidden = true;
    onAir(Date.now());
    $("toggle-mic").focus();
  } catch (error) {
    showError(problem, error);
  } finally {
    $("go-live").disabled = false;
  }
});

// --- the end, confirmed in a dialog (Escape or "Keep going" leave everything as it was) ---------
function ended(recording) {
  if (live) live.pc.close();
  if (stream) stream.getTracks().forEach((track) => track.stop());
  if (meter) { meter.context.close(); meter = null; }
  if (stopClock) stopClock();
  $("elapsed").hidden = true;
  $("live-state").textContent = label("ended");
  $("live-state").dataset.state = "ended";
  for (const id of ["end", "controls", "devices", "backstage-cover", "terms", "remove-guest"]) {
    if ($(id)) $(id).hidden = true;
  }
  $("starts")?.remove();
  $("recording-note").hidden = recording === "none";
  closeChat();
  $("live-state").focus();
  room.close();
}

$("end")?.addEventListener("click", () => $("end-dialog").showModal());
$("end-dialog").addEventListener("close", async () => {
  if ($("end-dialog").returnValue !== "end") { $("end").focus(); return; }
  try {
    const done = await api("POST", `/api/communities/${slug}/live/${sessionId}/end`);
    ended(done.recording);
  } catch (error) {
    showError(problem, error);
    $("end").focus();
  }
});

$("new-key")?.addEventListener("click", async () => {
  if (!window.confirm(t("A new key stops the old one. Go on?"))) return;
  try {
    const made = await api("POST", `/api/communities/${slug}/live/${sessionId}/token`);
    $("stream-key").textContent = made.publish_token;
  } catch (error) { showError(problem, error); }
});

function showHands(hands) {
  $("no-hands").hidden = hands.length > 0;
  $("hands").replaceChildren(...hands.map((h) => {
    const item = document.createElement("li");
    item.textContent = `${h.name} `;
    const invite = document.createElement("button");
    invite.type = "button";
    invite.className = "small";
    invite.textContent = t("Invite %(name)s", { name: h.name });
    invite.addEventListener("click", () => room.send({ type: "invite", user_id: h.user_id }));
    item.append(invite);
    return item;
  }));
}

async function showGuest(guest) {
  $("remove-guest").hidden = guest === null;
  if (guest === null) {
    $("guest-video").hidden = true;
    if (stageView) { stageView.stop(); stageView = null; }
    return;
  }
  if (!stageView) {
    stageView = await watch(`/api/live/${sessionId}/whep`, (slots) => {
      $("guest-video").srcObject = slots[1];
    }).catch((error) => { showError(problem, error); return null; });
  }
  $("guest-video").hidden = false;
}

$("remove-guest")?.addEventListener("click", () => room.send({ type: "remove_guest" }));

function closeChat() {
  for (const control of $("chat-form").elements) control.disabled = true;
  $("chat-form").elements.text.placeholder = t("The chat is closed.");
}

const deleteMessage = (message) => room.send({ type: "delete", id: message.id });
const room = channel(sessionId, (message) => {
  if (message.type === "hello") showHands(message.hands);
  else if (message.type === "hands") showHands(message.hands);
  else if (message.type === "viewers") $("viewer-count").textContent = t("%(count)s watching", { count: message.count });
  else if (message.type === "chat") chatItem($("chat"), message, true, deleteMessage);
  else if (message.type === "deleted") $("chat").querySelector(`[data-id="${message.id}"]`)?.remove();
  else if (message.type === "reaction") floatReaction($("reactions-layer"), message.emoji);
  else if (message.type === "stage") showGuest(message.guest);
  else if (message.type === "error") showError(problem, message);
});

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.text;
  if (input.value.trim()) room.send({ type: "chat", text: input.value });
  input.value = "";
});

// Before it starts: when, and how long until then; a reload while on air: the clock goes on.
const state = root.dataset.state;
if (state === "ended") closeChat();
else if (state === "scheduled" && $("countdown")) {
  let stop = null;
  stop = ticking(() => {
    const left = untilText(root.dataset.starts);
    $("countdown").textContent = left ? `· ${left}` : `· ${t("due now")}`;
    if (!left && stop) stop();
  });
} else if (state === "live" && root.dataset.started) onAir(new Date(root.dataset.started).getTime());
