// Review queue: poster grid, player with frame-accurate trims on the filmstrip, captions,
// approve / reject with a reason, undo for a few seconds, keyboard shortcuts, edit history.
import { api, csrf, el, showError, timecode, FPS } from "./api.js";
import { duration, number, size, t, when } from "./i18n.js";

const root = document.getElementById("review");
const slug = root.dataset.community;
const base = `/api/communities/${slug}/review`;
const $ = (id) => document.getElementById(id);
const player = $("player");
const problem = $("problem");
let clips = [];
let current = null;
let reasons = [];
// A decision waits UNDO_MS before it is sent (nothing reaches the member, reels or webhooks
// until then), so Undo needs no way back on the server. Leaving the page sends it at once.
const UNDO_MS = 6000;
let pending = null;

const LABELS = { ready_for_review: t("waiting"), approved: t("approved"), rejected: t("rejected") };

function filters() {
  const form = new FormData($("filters"));
  const params = new URLSearchParams({ limit: "200" });
  for (const [key, value] of form) if (value) params.set(key, value);
  return params;
}

async function load(selectId, { quiet = false } = {}) {
  problem.hidden = true;
  try {
    const data = await api("GET", `${base}?${filters()}`);
    clips = data.clips.filter((c) => c.id !== pending?.clip.id); // decided, not yet sent
    reasons = data.reasons;
  } catch (error) {
    showError(problem, error);
    return;
  }
  const list = $("queue");
  const shown = [...list.querySelectorAll(".poster")].map((b) => b.dataset.clip).join();
  if (quiet && shown === clips.map((c) => c.id).join()) return; // nothing new
  showQueue();
  if (quiet && current && clips.some((c) => c.id === current.id)) {
    markSelected(current.id);
  } else if (selectId && clips.some((c) => c.id === selectId)) select(selectId);
  else if (clips.length) select(clips[0].id);
  else $("detail").hidden = true;
}

function showQueue() {
  $("queue").replaceChildren(...clips.map((c) => el("li", {},
    // the name is the visible text (WCAG 2.5.3 label in name): member, title, length
    el("button", { type: "button", class: "poster", dataset: { clip: c.id }, onclick: () => select(c.id) },
      el("img", { src: c.media.poster, alt: "", loading: "lazy" }),
      el("span", { class: "poster-label" }, c.member.display_name, el("br"),
        el("small", { class: "poster-title" }, c.title || c.filename), el("br"),
        el("small", {}, duration(c.frames / FPS)))))));
  $("empty").hidden = clips.length > 0;
}

// "doesn't answer the prompt" only for a story that answers one; no reason chosen beforehand
function showReasons(clip) {
  const usable = reasons.filter((r) => r.code !== "off_topic" || clip.prompt_id);
  $("reason").replaceChildren(el("option", { value: "" }, t("Choose a reason…")),
    ...usable.map((r) => el("option", { value: r.code }, r.message)));
}

// The file in words a moderator reads at a glance; the codes stay in "Technical details".
const CODECS = { h264: "H.264", hevc: "HEVC (H.265)", vp8: "VP8", vp9: "VP9", av1: "AV1",
  aac: "AAC", opus: "Opus", mp3: "MP3" };
const codec = (name) => CODECS[name] || (name || "?").toUpperCase();

function picture(v) {
  const turned = Math.abs(Number(v.rotation) || 0) % 180 === 90;
  const w = turned ? v.height : v.width;
  const h = turned ? v.width : v.height;
  if (!w || !h) return t("Picture size unknown");
  if (Math.abs(w - h) < 0.02 * Math.max(w, h)) return t("Square picture");
  return h > w ? t("Upright picture (portrait)") : t("Wide picture (landscape)");
}

function sound(a) {
  if (!a) return t("No sound");
  return a.channels === 1 ? t("Mono sound") : t("Stereo sound");
}

function techFacts(f) {
  const v = f.video || {};
  const turned = Math.abs(Number(v.rotation) || 0) % 180 === 90;
  const dims = turned ? `${v.height || "?"} × ${v.width || "?"}` : `${v.width || "?"} × ${v.height || "?"}`;
  const facts = [
    [t("Picture"), v.fps
      ? t("%(dims)s pixels, %(fps)s frames a second", { dims, fps: number(Number(v.fps), 0) })
      : t("%(dims)s pixels", { dims })],
    [t("Video format"), `${codec(v.codec)} · ${(f.container || "?").split(",")[0].toUpperCase()}`],
  ];
  if (v.hdr) facts.push([t("Colour"), t("HDR, shown in standard range")]);
  if (v.rotation) facts.push([t("Turned"), t("by %(degrees)s° (shown upright)", { degrees: v.rotation })]);
  if (f.audio) {
    facts.push([t("Sound format"), t("%(codec)s, %(rate)s kHz", {
      codec: codec(f.audio.codec), rate: number(f.audio.sample_rate / 1000) })]);
  }
  facts.push([t("File"), f.size ? size(f.size) : "?"]);
  return facts;
}

function markSelected(id) {
  for (const b of document.querySelectorAll(".poster")) {
    b.classList.toggle("selected", b.dataset.clip === id);
    if (b.dataset.clip === id) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

async function select(id) {
  try {
    current = await api("GET", `${base}/${id}`);
  } catch (error) {
    showError(problem, error);
    return;
  }
  markSelected(id);
  $("detail").hidden = false;
  $("detail-title").textContent = current.title || current.filename;
  $("detail-state").textContent = LABELS[current.state] || current.state;
  $("detail-state").dataset.state = current.state;
  $("detail-member").textContent = t("by %(name)s", { name: current.member.display_name });
  player.poster = current.media.poster;
  player.src = current.media.web;
  $("strip").src = current.media.filmstrip;
  for (const id of ["trim-in", "trim-out"]) $(id).max = current.frames;
  $("trim-in").value = current.trim_in;
  $("trim-out").value = current.trim_out;
  $("caption-name").value = current.caption_name || "";
  $("caption-quote").value = current.caption_quote || "";
  $("saved").textContent = "";
  $("approve").disabled = current.state === "approved";
  $("reject").disabled = current.state === "rejected";
  showReasons(current);
  const f = current.facts;
  const terms = { version: current.consent.release_version, language: current.consent.release_language || "?",
    when: when(current.consent.consented_at) };
  const consent = current.consent.basis === "session_terms"
    ? t("host's session recording terms v%(version)s, %(when)s", terms)
    : t("release v%(version)s (%(language)s), %(when)s", terms);
  const facts = [
    [t("Length"), duration(current.frames / FPS)],
    [t("Looks"), `${picture(f.video || {})} · ${sound(f.audio)}`],
    [t("Consent"), consent],
  ];
  const pairs = (list) => list.flatMap(([k, val]) => [el("dt", {}, k), el("dd", {}, val)]);
  $("facts").replaceChildren(...pairs(facts));
  $("tech").replaceChildren(...pairs([...techFacts(f),
    [t("Frames"), number(current.frames)]]));
  $("history").replaceChildren(...current.edits.map((e) => el("li", {},
    `${when(e.created_at)} · ${e.editor || t("someone")}: `,
    Object.entries(e.changes).map(([k, [a, b]]) => `${k} ${a ?? "—"} → ${b ?? "—"}`).join("; "))));
  shade();
}

function frameTime(frame) {
  return (frame + 0.5) / FPS; // the middle of the frame: seeks land on it exactly
}

function shade() {
  const total = Number($("trim-in").max) || 1;
  const a = Number($("trim-in").value);
  const b = Number($("trim-out").value);
  $("shade-in").style.width = `${(100 * a) / total}%`;
  $("shade-out").style.width = `${(100 * (total - b)) / total}%`;
  $("trim-in-time").textContent = timecode(a);
  $("trim-out-time").textContent = timecode(b);
}

function onTrim(which) {
  const a = $("trim-in");
  const b = $("trim-out");
  if (Number(a.value) > Number(b.value) - 2 * FPS) {
    if (which === "in") a.value = Math.max(0, Number(b.value) - 2 * FPS);
    else b.value = Math.min(Number(b.max), Number(a.value) + 2 * FPS);
  }
  shade();
  player.pause();
  player.currentTime = frameTime(which === "in" ? Number(a.value) : Math.max(Number(b.value) - 1, 0));
}
$("trim-in").addEventListener("input", () => onTrim("in"));
$("trim-out").addEventListener("input", () => onTrim("out"));

function currentFrame() {
  return Math.floor(player.currentTime * FPS + 1e-3);
}
$("step-back").addEventListener("click", () => { player.pause(); player.currentTime = frameTime(Math.max(currentFrame() - 1, 0)); });
$("step-on").addEventListener("click", () => { player.pause(); player.currentTime = frameTime(currentFrame() + 1); });
$("set-in").addEventListener("click", () => { $("trim-in").value = currentFrame(); onTrim("in"); });
$("set-out").addEventListener("click", () => { $("trim-out").value = currentFrame() + 1; onTrim("out"); });

$("save-edit").addEventListener("click", async () => {
  if (!current) return;
  try {
    const body = {
      trim_in: Number($("trim-in").value), trim_out: Number($("trim-out").value),
      caption_name: $("caption-name").value, caption_quote: $("caption-quote").value,
    };
    current = await api("PATCH", `${base}/${current.id}`, body);
    $("saved").textContent = t("Saved");
    await select(current.id);
    $("saved").textContent = t("Saved");
  } catch (error) {
    showError(problem, error);
  }
});

// --- deciding, with a few seconds to undo -----------------------------------------------------
let undoClock = null;

function toast(text, undoable) {
  clearInterval(undoClock);
  $("undo-bar").hidden = false;
  $("undo-text").textContent = text;
  $("undo").hidden = !undoable;
  $("undo-time").textContent = "";
  if (!undoable) {
    undoClock = setTimeout(() => { $("undo-bar").hidden = true; }, 2500);
    return;
  }
  const until = Date.now() + UNDO_MS;
  const draw = () => { $("undo-time").textContent = String(Math.max(0, Math.ceil((until - Date.now()) / 1000))); };
  draw();
  undoClock = setInterval(draw, 250);
}

async function send(decision, { keepalive = false } = {}) {
  clearTimeout(decision.timer);
  if (pending === decision) pending = null;
  const url = `${base}/${decision.clip.id}/${decision.kind}`;
  if (keepalive) { // the page is going away: the browser finishes this request by itself
    fetch(url, { method: "POST", keepalive: true, credentials: "same-origin", body: JSON.stringify(decision.body),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf } });
    return;
  }
  if (!pending) { clearInterval(undoClock); $("undo-bar").hidden = true; }
  try {
    await api("POST", url, decision.body);
  } catch (error) {
    showError(problem, error);
    load(current?.id);
  }
}

function decide(kind) {
  if (!current || pending?.clip.id === current.id) return; // the next one is still opening
  if (kind === "reject" && !$("reason").value) {
    showError(problem, { message: t("Choose a reason first: the member sees it, so they know what to change.") });
    $("reason").focus();
    return;
  }
  if (pending) send(pending); // an earlier decision goes now
  const clip = current;
  const index = clips.findIndex((c) => c.id === clip.id);
  const body = kind === "reject" ? { reason: $("reason").value, note: $("note").value } : {};
  const decision = { clip, kind, body, index };
  decision.timer = setTimeout(() => send(decision), UNDO_MS);
  pending = decision;
  problem.hidden = true;
  $("note").value = "";
  const title = clip.title || clip.filename;
  toast(kind === "approve" ? t("Approved: %(title)s", { title }) : t("Not approved: %(title)s", { title }), true);
  clips = clips.filter((c) => c.id !== clip.id);
  showQueue();
  const next = clips[index] || clips[index - 1];
  // the decided story left the list: focus goes to the one now open, or says none is left
  current = null;
  if (next) {
    select(next.id);
    document.querySelector(`.poster[data-clip="${next.id}"]`)?.focus();
  } else {
    $("detail").hidden = true;
    $("empty").focus();
  }
}

function undo() {
  const decision = pending;
  if (!decision) return;
  clearTimeout(decision.timer);
  pending = null;
  clips.splice(Math.min(decision.index, clips.length), 0, decision.clip);
  showQueue();
  select(decision.clip.id);
  document.querySelector(`.poster[data-clip="${decision.clip.id}"]`)?.focus();
  toast(t("Undone: %(title)s is waiting again.", { title: decision.clip.title || decision.clip.filename }), false);
}

$("approve").addEventListener("click", () => decide("approve"));
$("reject").addEventListener("click", () => decide("reject"));
$("undo").addEventListener("click", undo);
// leaving while a decision waits: a link sends it first; closing the tab sends it on the way out
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a[href]");
  if (!pending || !link || event.defaultPrevented || link.target) return;
  event.preventDefault();
  await send(pending);
  window.location.href = link.href;
});
window.addEventListener("pagehide", () => { if (pending) send(pending, { keepalive: true }); });

function step(delta) {
  if (!clips.length) return;
  const index = current ? clips.findIndex((c) => c.id === current.id) : -1;
  const target = clips[Math.min(Math.max(index + delta, 0), clips.length - 1)];
  if (target) select(target.id);
}

// Single-key shortcuts (WCAG 2.1.4): they can be turned off (remembered in this browser),
// never act while typing, and leave Space and Enter to a focused button or link.
const shortcuts = $("shortcuts");
shortcuts.checked = localStorage.getItem("kumpul.review.shortcuts") !== "off";
shortcuts.addEventListener("change", () => {
  localStorage.setItem("kumpul.review.shortcuts", shortcuts.checked ? "on" : "off");
});
const TYPING = "input:not([type=range]):not([type=checkbox]):not([type=radio]), textarea, select, [contenteditable]";
const OWN_KEYS = "button, a[href], summary, input, [role=tab], [tabindex]"; // the player is ours

document.addEventListener("keydown", (event) => {
  if (!shortcuts.checked || event.defaultPrevented) return;
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.matches(TYPING)) return;
  const key = event.key.toLowerCase();
  if ((key === " " || key === "enter") && event.target.closest(OWN_KEYS)) return;
  if (key === " " || key === "k") {
    event.preventDefault();
    if (player.paused) player.play(); else player.pause();
  } else if (key === "a") decide("approve");
  else if (key === "r") decide("reject"); // with the reason chosen in the list
  else if (key === "u") undo();
  else if (key === "n" || key === "j") step(1);
  else if (key === "p") step(-1);
});

$("filters").addEventListener("change", () => load());
load();
// new stories arrive while moderators work: look again every 10 s (the player is left alone)
setInterval(() => { if (!document.hidden) load(undefined, { quiet: true }); }, 10_000);
