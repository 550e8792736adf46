// Host studio: camera preview, go live (WHIP), viewer count, chat, reactions, hands, stage.
import { api, showError } from "./api.js";
import { channel, chatItem, floatReaction, publish, watch } from "./live.js";
import { label, t } from "./i18n.js";

const root = document.getElementById("studio");
const slug = root.dataset.community;
const sessionId = root.dataset.session;
const $ = (id) => document.getElementById(id);
const problem = $("problem");
let stream = null;
let live = null;
let stageView = null;

// Quality presets: the camera's size and the most the encoder may send.
const PRESETS = {
  720: { video: { width: 1280, height: 720, frameRate: 30 }, maxBitrate: 2_500_000 },
  480: { video: { width: 640, height: 480, frameRate: 30 }, maxBitrate: 1_000_000 },
};
const preset = () => PRESETS[$("quality").value] || PRESETS[720];

async function applyPreset() {
  const chosen = preset();
  const track = stream?.getVideoTracks()[0];
  if (track) await track.applyConstraints(chosen.video).catch(() => {});
  const sender = live?.pc.getSenders().find((s) => s.track?.kind === "video");
  if (sender) {
    const parameters = sender.getParameters();
    for (const encoding of parameters.encodings || []) encoding.maxBitrate = chosen.maxBitrate;
    await sender.setParameters(parameters).catch(() => {});
  }
}
$("quality").addEventListener("change", applyPreset);

$("camera").addEventListener("click", async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: preset().video, audio: true });
    $("preview").srcObject = stream;
    $("camera").hidden = true;
    $("go-live").hidden = false;
    $("go-live").focus();
  } catch (error) {
    showError(problem, { message: t("The camera or microphone can't be used."), hint: error.message });
  }
});

$("go-live").addEventListener("click", async () => {
  problem.hidden = true;
  try {
    live = await publish(`/api/live/${sessionId}/whip`, stream);
    await applyPreset();
    $("go-live").hidden = true;
    $("live-state").textContent = label("live");
    $("live-state").dataset.state = "live";
    $("end").focus();
  } catch (error) { showError(problem, error); }
});

$("end").addEventListener("click", async () => {
  if (!window.confirm(t("End the session for everyone?"))) return;
  try {
    const ended = await api("POST", `/api/communities/${slug}/live/${sessionId}/end`);
    if (live) live.pc.close();
    if (stream) stream.getTracks().forEach((track) => track.stop());
    $("live-state").textContent = label("ended");
    $("live-state").dataset.state = "ended";
    $("end").hidden = true;
    $("go-live").hidden = true;
    $("recording-note").hidden = ended.recording === "none";
    $("live-state").focus();
    room.close();
  } catch (error) { showError(problem, error); }
});

$("new-key").addEventListener("click", async () => {
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

$("remove-guest").addEventListener("click", () => room.send({ type: "remove_guest" }));

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
