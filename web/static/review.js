// Review queue: poster grid, player with frame-accurate trims on the filmstrip, captions,
// approve / reject with a reason, keyboard shortcuts, edit history.
import { api, el, showError, timecode, FPS } from "./api.js";
import { duration, number, size, t, when } from "./i18n.js";

const root = document.getElementById("review");
const slug = root.dataset.community;
const base = `/api/communities/${slug}/review`;
const $ = (id) => document.getElementById(id);
const player = $("player");
const problem = $("problem");
let clips = [];
let current = null;

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
    clips = data.clips;
    const select = $("reason");
    if (!select.options.length) {
      for (const r of data.reasons) select.append(el("option", { value: r.code }, r.message));
    }
  } catch (error) {
    showError(problem, error);
    return;
  }
  const list = $("queue");
  const shown = [...list.querySelectorAll(".poster")].map((b) => b.dataset.clip).join();
  if (quiet && shown === clips.map((c) => c.id).join()) return; // nothing new
  list.replaceChildren(...clips.map((c) => el("li", {},
    // the name is the visible text (WCAG 2.5.3 label in name): member, title, length
    el("button", { type: "button", class: "poster", dataset: { clip: c.id }, onclick: () => select(c.id) },
      el("img", { src: c.media.poster, alt: "", loading: "lazy" }),
      el("span", { class: "poster-label" }, c.member.display_name, el("br"),
        el("small", { class: "poster-title" }, c.title || c.filename), el("br"),
        el("small", {}, duration(c.frames / FPS)))))));
  $("empty").hidden = clips.length > 0;
  if (quiet && current && clips.some((c) => c.id === current.id)) {
    markSelected(current.id);
  } else if (selectId && clips.some((c) => c.id === selectId)) select(selectId);
  else if (clips.length) select(clips[0].id);
  else $("detail").hidden = true;
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
  const f = current.facts;
  const v = f.video || {};
  const source = [`${f.container || "?"}, ${v.codec || "?"} ${v.width || "?"}×${v.height || "?"}`];
  if (v.fps) source.push(t("%(fps)s fps", { fps: number(Number(v.fps), 2) }));
  if (v.hdr) source.push("HDR");
  if (v.rotation) source.push(t("rotated %(degrees)s°", { degrees: v.rotation }));
  const terms = { version: current.consent.release_version, language: current.consent.release_language || "?",
    when: when(current.consent.consented_at) };
  const consent = current.consent.basis === "session_terms"
    ? t("host's session recording terms v%(version)s, %(when)s", terms)
    : t("release v%(version)s (%(language)s), %(when)s", terms);
  const facts = [
    [t("Length"), t("%(length)s (%(frames)s frames)", { length: duration(current.frames / FPS), frames: current.frames })],
    [t("Source"), source.join(", ")],
    [t("Audio"), f.audio ? (f.audio.channels === 1
      ? t("%(codec)s %(rate)s Hz, mono", { codec: f.audio.codec, rate: f.audio.sample_rate })
      : t("%(codec)s %(rate)s Hz, %(channels)s channels", { codec: f.audio.codec, rate: f.audio.sample_rate, channels: f.audio.channels })) : t("none")],
    [t("File"), f.size ? size(f.size) : "?"],
    [t("Consent"), consent],
  ];
  $("facts").replaceChildren(...facts.flatMap(([k, val]) => [el("dt", {}, k), el("dd", {}, val)]));
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

async function decide(kind) {
  if (!current) return;
  const index = clips.findIndex((c) => c.id === current.id);
  const next = clips[index + 1] || clips[index - 1];
  try {
    const body = kind === "reject" ? { reason: $("reason").value, note: $("note").value } : undefined;
    await api("POST", `${base}/${current.id}/${kind}`, body);
    $("note").value = "";
    await load(next && next.id);
    // the decided story left the list: focus goes to the one now open, or says none is left
    const opened = next && document.querySelector(`.poster[data-clip="${next.id}"]`);
    if (opened) opened.focus();
    else $("empty").focus();
  } catch (error) {
    showError(problem, error);
  }
}
$("approve").addEventListener("click", () => decide("approve"));
$("reject").addEventListener("click", () => decide("reject"));

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
  else if (key === "n" || key === "j") step(1);
  else if (key === "p") step(-1);
});

$("filters").addEventListener("change", () => load());
load();
// new stories arrive while moderators work: look again every 10 s (the player is left alone)
setInterval(() => { if (!document.hidden) load(undefined, { quiet: true }); }, 10_000);
