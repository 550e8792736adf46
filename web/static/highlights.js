// Highlights of an ended session: the recording, its activity per second as a graph, the
// proposed moments on the filmstrip; accept (optionally adjusted), discard or restore each.
import { api, el, showError } from "./api.js";
import { duration as spoken, number, t } from "./i18n.js";

const root = document.getElementById("highlights");
const base = `/api/communities/${root.dataset.community}/live/${root.dataset.session}/moments`;
const $ = (id) => document.getElementById(id);
const player = $("player");
const problem = $("problem");
let data = null;
let poll = null;

const STATES = { proposed: t("proposed"), accepted: t("accepted"), discarded: t("discarded") };
const CLIP = { uploaded: t("Clip being cut."), processing: t("Clip being prepared."),
  approved: t("Clip in the approved clips."), ready_for_review: t("Clip waiting for review."),
  failed: t("Clip failed."), invalid: t("Clip unusable."), withdrawn: t("Clip withdrawn by the host."),
  rejected: t("Clip rejected.") };

function clock(ms) {
  const s = ms / 1000;
  const [whole, tenth] = (s % 60).toFixed(1).padStart(4, "0").split(".");
  return `${Math.floor(s / 60)}:${whole}${number(0.5).charAt(1)}${tenth}`;
}

function duration() {
  return (data && data.recording.duration) || player.duration || 1;
}

async function load() {
  try {
    data = await api("GET", base);
  } catch (error) {
    showError(problem, error);
    return;
  }
  problem.hidden = true;
  const rec = data.recording;
  if (rec.web && !player.src) {
    player.src = rec.web;
    player.poster = rec.poster;
    $("strip").src = rec.filmstrip;
  }
  const finder = data.finder;
  $("finder-status").textContent = {
    none: t("The moments haven't been looked for yet."),
    finding: t("Looking for the best moments…"),
    failed: t("Looking for moments failed. Try Find again."),
    ready: t(data.moments.length === 1 ? "1 moment · %(low)s–%(high)s each" : "%(count)s moments · %(low)s–%(high)s each",
      { count: data.moments.length, low: number(finder.min_seconds), high: spoken(finder.max_seconds) }),
  }[finder.state] || finder.state;
  draw();
  list();
  const working = finder.state === "finding" ||
    data.moments.some((m) => m.clip && ["uploaded", "processing"].includes(m.clip.state));
  clearTimeout(poll);
  if (working) poll = setTimeout(load, 2000);
}

function draw() {
  const canvas = $("graph");
  const width = canvas.clientWidth || 600;
  canvas.width = width * devicePixelRatio;
  canvas.height = 80 * devicePixelRatio;
  const g = canvas.getContext("2d");
  g.scale(devicePixelRatio, devicePixelRatio);
  g.clearRect(0, 0, width, 80);
  const { reactions, messages, loudness } = data.activity;
  const n = reactions.length;
  if (!n) return;
  const total = reactions.map((r, i) => r + messages[i]);
  const top = Math.max(1, ...total);
  const step = width / n;
  for (const m of data.moments) {
    if (m.state === "discarded") continue;
    g.fillStyle = m.state === "accepted" ? "rgba(30,140,80,.18)" : "rgba(200,120,0,.16)";
    g.fillRect((m.start_ms / 1000) * step, 0, ((m.end_ms - m.start_ms) / 1000) * step, 80);
  }
  for (let i = 0; i < n; i += 1) {
    const hr = (reactions[i] / top) * 70;
    const hm = (messages[i] / top) * 70;
    g.fillStyle = "#d9480f";
    g.fillRect(i * step, 80 - hr, Math.max(step - 0.5, 0.5), hr);
    g.fillStyle = "#1c7ed6";
    g.fillRect(i * step, 80 - hr - hm, Math.max(step - 0.5, 0.5), hm);
  }
  g.strokeStyle = "#2b8a3e";
  g.lineWidth = 1.5;
  g.beginPath();
  loudness.forEach((lufs, i) => {
    const y = 80 - Math.max(0, Math.min(1, (lufs + 60) / 60)) * 78;
    if (i === 0) g.moveTo(i * step, y); else g.lineTo(i * step + step / 2, y);
  });
  g.stroke();
  const marks = $("marks");
  marks.replaceChildren(...data.moments.filter((m) => m.state !== "discarded").map((m) => el("button", {
    type: "button", class: `moment-mark ${m.state}`, title: `${clock(m.start_ms)}–${clock(m.end_ms)}: ${m.why}`,
    "aria-label": t("Play the moment at %(time)s", { time: clock(m.start_ms) }),
    style: `left:${(m.start_ms / 1000 / duration()) * 100}%;width:${((m.end_ms - m.start_ms) / 1000 / duration()) * 100}%`,
    onclick: () => play(m.start_ms),
  })));
}

function play(ms) {
  player.currentTime = ms / 1000;
  player.play().catch(() => {});
}

function bounds(item) {
  const read = (name) => Math.round(parseFloat(item.querySelector(`[name=${name}]`).value) * 1000);
  return { start_ms: read("start"), end_ms: read("end") };
}

function list() {
  const items = data.moments.slice().sort((a, b) => b.score - a.score || a.start_ms - b.start_ms);
  $("moments").replaceChildren(...items.map((m) => {
    const decided = m.state !== "proposed";
    const item = el("li", { class: `moment ${m.state}`, dataset: { moment: m.id } },
      el("p", {}, el("strong", {}, `${clock(m.start_ms)}–${clock(m.end_ms)}`), " ",
        el("span", { class: "badge state", dataset: { state: m.state } }, STATES[m.state]), " ",
        el("small", { class: "muted" }, spoken((m.end_ms - m.start_ms) / 1000))),
      el("p", { class: "why" }, m.why),
      m.clip ? el("p", { class: "muted clip-state" }, CLIP[m.clip.state] || m.clip.state) : null,
      decided ? null : el("div", { class: "adjust" }, ...["start", "end"].map((edge) => el("div", {},
        el("label", {}, edge === "start" ? t("Start (s)") : t("End (s)"), " ", el("input", {
          name: edge, type: "number", step: "0.1", min: "0", inputmode: "decimal",
          value: ((edge === "start" ? m.start_ms : m.end_ms) / 1000).toFixed(1) })),
        el("button", { type: "button", class: "small secondary", onclick: () => {
          item.querySelector(`[name=${edge}]`).value = player.currentTime.toFixed(1);
        } }, edge === "start" ? t("Start here") : t("End here"))))),
      el("p", { class: "actions" },
        el("button", { type: "button", class: "small secondary", onclick: () => play(m.start_ms) }, t("Play")),
        m.state === "proposed" ? el("button", { type: "button", class: "small accept",
          onclick: () => decide(m, "accept", bounds(item)) }, t("Accept")) : null,
        m.state === "proposed" ? el("button", { type: "button", class: "small secondary",
          onclick: () => decide(m, "discard") }, t("Discard")) : null,
        m.state === "discarded" ? el("button", { type: "button", class: "small secondary",
          onclick: () => decide(m, "restore") }, t("Restore")) : null));
    return item;
  }));
  $("empty").hidden = data.moments.length > 0 || data.finder.state !== "ready";
}

async function decide(moment, action, body) {
  problem.hidden = true;
  try {
    await api("POST", `${base}/${moment.id}/${action}`, body);
  } catch (error) {
    showError(problem, error);
    return;
  }
  await load();
}

$("find-again").addEventListener("click", async () => {
  problem.hidden = true;
  try {
    await api("POST", `${base}/find`);
  } catch (error) {
    showError(problem, error);
    return;
  }
  await load();
});
$("filmstrip").addEventListener("click", (event) => {
  if (event.target.closest(".moment-mark")) return;
  const box = $("filmstrip").getBoundingClientRect();
  play(((event.clientX - box.left) / box.width) * duration() * 1000);
});
window.addEventListener("resize", () => data && draw());
load();
