// Viewer page: the host (and a guest on stage) over WHEP, chat, reactions, raise a hand,
// and going on stage when invited (WHIP with the stage token). Before the start: when, and a
// countdown; after the end: the controls turn off and the replay is offered once it is ready.
import { api, showError } from "./api.js";
import { channel, chatItem, elapsed, floatReaction, publish, ticking, untilText, watch } from "./live.js";
import { label, t } from "./i18n.js";

const root = document.getElementById("watch");
const slug = root.dataset.community;
const sessionId = root.dataset.session;
const $ = (id) => document.getElementById(id);
const problem = $("problem");
let viewing = null;
let stageToken = null;
let onStage = null;
let handUp = false;
let canModerate = false;
let codec = null; // what the host sends ("VP8", "H264"), from the room channel

let starting = false;
let ended = root.dataset.state === "ended";
let hostAway = false; // the host stopped sending; the connection stays and resumes

function waiting(text) {
  $("waiting-box").hidden = text === null;
  $("waiting").hidden = text === null;
  if (text !== null) $("waiting").textContent = text;
}

// --- the clock: a countdown before the start, the time on air while live -----------------------
let stopClock = null;
function countdown() {
  if (!$("countdown")) return;
  stopClock = ticking(() => {
    const left = untilText(root.dataset.starts);
    $("countdown").textContent = left || t("Any moment now");
  });
}
function onAir(since) {
  if (stopClock) stopClock();
  $("starts")?.remove();
  $("countdown")?.remove();
  $("live-state").textContent = label("live");
  $("live-state").dataset.state = "live";
  $("elapsed").hidden = false;
  stopClock = ticking(() => { $("elapsed").textContent = elapsed(Date.now() - since); });
}

// --- the end: every control off, then the replay once the recording is ready -----------------
function controlsOff() {
  for (const control of $("viewer-controls").querySelectorAll("button, select")) control.disabled = true;
  $("quality-bar").hidden = true;
  $("viewer-count").hidden = true;
  $("join-stage").hidden = true;
  $("invited").hidden = true;
  for (const control of $("chat-form").elements) control.disabled = true;
  $("chat-form").elements.text.placeholder = t("The chat is closed.");
}

function showReplay(replay) {
  const video = $("replay");
  video.poster = replay.poster;
  video.src = replay.web;
  video.hidden = false;
  for (const id of ["host-video", "guest-video", "self-video"]) $(id).hidden = true;
  waiting(null);
  $("replay-note").textContent = t("The replay is ready.");
  $("replay-note").hidden = false;
}

// Just after the end the recording may not be stored yet ("none" until the recorder has
// written and stored it, longer on a busy server): look every second at first, then every
// 5 s for two minutes; while it is made, every 5 s. A failed one is said, not promised.
async function followReplay(looks = 0) {
  const again = () => setTimeout(() => followReplay(looks + 1), looks < 5 ? 1000 : 5000);
  let session;
  try {
    session = await api("GET", `/api/communities/${slug}/live/${sessionId}`);
  } catch {
    setTimeout(() => followReplay(looks), 5000); // offline for a moment: look again
    return;
  }
  if (session.replay) showReplay(session.replay);
  else if (session.recording === "processing") {
    $("replay-note").hidden = false;
    again();
  } else if (session.recording === "failed") {
    $("replay-note").textContent = t("The replay could not be prepared.");
    $("replay-note").hidden = false;
  } else if (session.recording === "none" && looks < 29) again();
}

function connectionState(text) {
  $("connection").hidden = text === null;
  $("connection").textContent = text || "";
}

async function startWatching() {
  if (viewing || starting || ended) return; // one WHEP connection per page
  starting = true;
  try {
    viewing = await watch(`/api/live/${sessionId}/whep`, (slots) => {
      $("host-video").srcObject = slots[0];
      $("guest-video").srcObject = slots[1];
    }, codec);
    followConnection(viewing);
    if (!hostAway) waiting(null);
    if ($("quality-choice").value !== "high") {
      api("POST", `${viewing.location}/quality`, { ceiling: $("quality-choice").value }).then(showQuality, () => {});
    }
  } catch (error) {
    viewing = null;
    if (error.code === "session_not_live") setTimeout(startWatching, 2000);
    else if (error.code === "session_ended") {
      ended = true;
      waiting(t("This session has ended."));
      controlsOff();
    }
    else if (!error.status || error.status >= 500) setTimeout(startWatching, 2000); // offline
    else showError(problem, error);
  } finally {
    starting = false;
  }
}

// A connection that fails (or stays disconnected) is replaced by a new WHEP session.
function followConnection(current) {
  current.pc.addEventListener("connectionstatechange", () => {
    if (viewing !== current) return;
    const state = current.pc.connectionState;
    if (state === "connected") connectionState(null);
    else if (state === "failed" || state === "closed") reconnect();
    else if (state === "disconnected") {
      connectionState(t("Reconnecting…"));
      setTimeout(() => {
        if (viewing === current && current.pc.connectionState !== "connected") reconnect();
      }, 3000);
    }
  });
}

function reconnect() {
  const old = viewing;
  viewing = null;
  if (old) old.stop();
  if (ended) return;
  connectionState(t("Reconnecting…"));
  setTimeout(startWatching, 1000);
}

// The picture's quality: what the server sends this viewer now, and the viewer's choice.
const LAYERS = { high: () => t("Best quality"), low: () => t("Lower quality"), audio: () => t("Sound only") };
function showQuality(quality) {
  $("quality-now").hidden = !quality;
  if (!quality) return;
  $("quality-now").textContent = LAYERS[quality.layer]?.() || quality.layer;
  $("quality-now").dataset.layer = quality.layer;
}
async function followQuality() {
  const current = viewing;
  if (current?.location) {
    showQuality(await api("GET", `${current.location}/quality`).catch(() => null));
  } else showQuality(null);
}
setInterval(followQuality, 2000);
$("quality-choice").addEventListener("change", async () => {
  if (!viewing?.location) return;
  try {
    showQuality(await api("POST", `${viewing.location}/quality`, { ceiling: $("quality-choice").value }));
  } catch (error) { showError(problem, error); }
});

function hostVideoEnded() {
  const track = viewing?.pc.getReceivers().find((r) => r.track.kind === "video")?.track;
  return !track || track.readyState === "ended";
}

$("unmute").addEventListener("click", () => {
  for (const id of ["host-video", "guest-video"]) {
    $(id).muted = false;
    $(id).play().catch(() => {});
  }
  $("unmute").hidden = true;
  $("hand").focus(); // the sound button is gone
});

$("hand").addEventListener("click", () => {
  handUp = !handUp;
  room.send({ type: "hand", up: handUp });
  $("hand").textContent = handUp ? t("Lower hand") : t("Raise hand");
});

$("join-stage").addEventListener("click", async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    onStage = await publish(`/api/live/${sessionId}/whip`, stream, { Authorization: `Bearer ${stageToken}` },
      codec || "VP8");
    onStage.stream = stream;
    $("self-video").srcObject = stream;
    $("self-video").hidden = false;
    $("join-stage").hidden = true;
    $("invited").hidden = true;
    $("leave-stage").hidden = false;
    $("leave-stage").focus();
  } catch (error) { showError(problem, error); }
});

function leaveStage() {
  if (!onStage) return;
  onStage.stream.getTracks().forEach((track) => track.stop());
  onStage.pc.close();
  onStage = null;
  $("self-video").hidden = true;
  $("leave-stage").hidden = true;
}
$("leave-stage").addEventListener("click", async () => {
  const current = onStage;
  leaveStage();
  $("hand").focus();
  if (current) await current.stop().catch(() => {});
});

const REACTIONS = [];
// what a screen reader says for each reaction, in the page's language
const SPOKEN = { "❤️": t("love"), "🔥": t("fire"), "👏": t("applause"), "😂": t("laughing"),
  "😮": t("surprised"), "🎉": t("celebrate") };
function reactionButtons(list) {
  if (REACTIONS.length) return;
  REACTIONS.push(...list);
  $("reaction-buttons").replaceChildren(...list.map((emoji) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = emoji;
    b.setAttribute("aria-label", t("React: %(name)s", { name: SPOKEN[emoji] || emoji }));
    b.addEventListener("click", () => room.send({ type: "reaction", emoji }));
    return b;
  }));
}

const deleteMessage = (message) => room.send({ type: "delete", id: message.id });
const room = channel(sessionId, (message) => {
  if (message.type === "hello") {
    canModerate = message.moderator;
    reactionButtons(message.reactions);
  } else if (message.type === "viewers") {
    codec = message.video_codec || codec;
    $("viewer-count").textContent = t("%(count)s watching", { count: message.count });
    if (message.live && $("elapsed").hidden && !ended) onAir(Date.now());
    if (message.live) startWatching();
  } else if (message.type === "publisher" && message.slot === "host" && !ended) {
    hostAway = !message.live;
    if (hostAway) waiting(t("The host stopped sending. The picture comes back by itself when they return."));
    else {
      waiting(null);
      if (viewing && hostVideoEnded()) reconnect(); // a player that ended its track
      else startWatching();
    }
  } else if (message.type === "chat") chatItem($("chat"), message, canModerate, deleteMessage);
  else if (message.type === "deleted") $("chat").querySelector(`[data-id="${message.id}"]`)?.remove();
  else if (message.type === "reaction") floatReaction($("reactions-layer"), message.emoji);
  else if (message.type === "invite") {
    stageToken = message.stage_token;
    $("invited").hidden = false;
    $("join-stage").hidden = false;
  } else if (message.type === "stage") {
    const someoneElse = message.guest !== null && !onStage;
    $("guest-video").hidden = !someoneElse;
    if (message.guest === null) leaveStage();
  } else if (message.type === "ended" || (message.type === "closed" && message.code === 4410)) {
    if (ended && message.type === "closed") return; // the end, told twice
    leaveStage();
    ended = true;
    if (viewing) { viewing.pc.close(); viewing = null; }
    if (stopClock) stopClock();
    connectionState(null);
    $("elapsed").hidden = true;
    $("live-state").textContent = label("ended");
    $("live-state").dataset.state = "ended";
    waiting(t("This session has ended."));
    controlsOff();
    followReplay();
  } else if (message.type === "error") showError(problem, message);
});

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.text;
  if (input.value.trim()) room.send({ type: "chat", text: input.value });
  input.value = "";
});

if (root.dataset.state === "live") {
  if (root.dataset.started) onAir(new Date(root.dataset.started).getTime());
  startWatching();
} else if (root.dataset.state === "scheduled") countdown();
else if (ended) {
  controlsOff();
  const endedFor = Date.now() - new Date(root.dataset.ended).getTime(); // NaN: not known
  if (root.dataset.recording === "processing") followReplay(0);
  else if (root.dataset.recording === "none" && endedFor < 120_000) followReplay(5); // storing
}
