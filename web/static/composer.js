// Reel composer: order approved clips (drag and drop or arrows), trim each, choose the look,
// render with a progress bar, preview, publish and unpublish. Every change is saved at once.
import { api, el, showError, FPS } from "./api.js";
import { duration, label, lang, t } from "./i18n.js";

const root = document.getElementById("composer");
const slug = root.dataset.community;
const reelUrl = `/api/communities/${slug}/reels/${root.dataset.reel}`;
const $ = (id) => document.getElementById(id);
const problem = $("problem");
const form = $("settings");
let reel = null;
let approved = new Map();
let polling = null;

function items() {
  return reel.composition.items;
}

async function save(change) {
  problem.hidden = true;
  $("save-state").textContent = t("Saving…");
  try {
    reel = await api("PATCH", reelUrl, change);
    $("save-state").textContent = t("Saved");
  } catch (error) {
    $("save-state").textContent = "";
    showError(problem, error);
  }
  show();
}

function seconds(frames) {
  return (frames / FPS).toFixed(2);
}

function trimInput(item, field) {
  const clip = approved.get(item.clip_id);
  return el("input", {
    type: "number", step: String(1 / FPS), min: "0", max: clip ? seconds(clip.frames) : undefined,
    value: seconds(item[field]), "aria-label": field === "trim_in" ? t("In (s)") : t("Out (s)"), class: "trim-input",
    onchange: (event) => {
      const next = items().map((i) => (i.clip_id === item.clip_id
        ? { ...i, [field]: Math.round(Number(event.target.value) * FPS) } : i));
      save({ items: next });
    },
  });
}

function move(from, to) {
  const next = [...items()];
  const [moved] = next.splice(from, 1);
  next.splice(to, 0, moved);
  save({ items: next });
}

let dragging = null;
function showItems() {
  const list = $("items");
  list.replaceChildren(...items().map((item, index) => {
    const clip = approved.get(item.clip_id);
    const row = el("li", { draggable: "true", class: "reel-item", dataset: { clip: item.clip_id } },
      clip ? el("img", { src: clip.media.poster, alt: "", class: "thumb" }) : null,
      el("div", { class: "grow" },
        el("strong", {}, clip ? clip.member.display_name : item.clip_id), el("br"),
        el("label", { class: "inline-label" }, t("In"), " ", trimInput(item, "trim_in")),
        el("label", { class: "inline-label" }, " ", t("Out"), " ", trimInput(item, "trim_out"))),
      el("button", { type: "button", class: "small secondary", "aria-label": t("Move up"), disabled: index === 0, onclick: () => move(index, index - 1) }, "↑"),
      el("button", { type: "button", class: "small secondary", "aria-label": t("Move down"), disabled: index === items().length - 1, onclick: () => move(index, index + 1) }, "↓"),
      el("button", { type: "button", class: "small danger", "aria-label": t("Remove"), onclick: () => save({ items: items().filter((i) => i.clip_id !== item.clip_id) }) }, "✕"));
    row.addEventListener("dragstart", (event) => { dragging = index; event.dataTransfer.effectAllowed = "move"; });
    row.addEventListener("dragover", (event) => { event.preventDefault(); row.classList.add("drop"); });
    row.addEventListener("dragleave", () => row.classList.remove("drop"));
    row.addEventListener("drop", (event) => {
      event.preventDefault();
      row.classList.remove("drop");
      if (dragging !== null && dragging !== index) move(dragging, index);
      dragging = null;
    });
    return row;
  }));
  $("items-empty").hidden = items().length > 0;
  const inReel = new Set(items().map((i) => i.clip_id));
  $("approved").replaceChildren(...[...approved.values()].map((clip) => el("li", {},
    el("img", { src: clip.media.poster, alt: "", class: "thumb" }),
    el("div", { class: "grow" }, el("strong", {}, clip.member.display_name),
      clip.source === "live" ? el("span", { class: "muted" }, " · ", t("live: %(title)s", { title: clip.title })) : null, el("br"),
      el("small", { class: "muted" }, `${duration((clip.trim_out - clip.trim_in) / FPS)}${clip.caption_quote ? ` · “${clip.caption_quote}”` : ""}`)),
    el("button", { type: "button", class: "small", disabled: inReel.has(clip.id), dataset: { add: clip.id },
      onclick: () => save({ items: [...items(), { clip_id: clip.id }] }) }, inReel.has(clip.id) ? t("Added") : t("Add")))));
}

function showSettings() {
  const c = reel.composition;
  if (document.activeElement?.form !== form) {
    form.title.value = reel.title;
    form.canvas.value = reel.canvas;
    form.transition.value = c.transition;
    form.crossfade_frames.value = String(c.crossfade_frames);
    form.title_on.checked = Boolean(c.title_card);
    form.title_text.value = c.title_card ? c.title_card.text : (form.title_text.value || reel.title);
    if (c.title_card) form.title_color.value = c.title_card.color;
    form.captions.checked = c.captions;
    for (const name of ["music_asset", "intro_asset", "outro_asset"]) form[name].value = c[name] || "";
  }
  form.crossfade_frames.disabled = c.transition !== "crossfade";
}

function showRender() {
  const rendering = reel.state === "rendering";
  $("reel-state").textContent = label(reel.state);
  $("reel-state").dataset.state = reel.state;
  $("reel-title").textContent = reel.title;
  $("render").disabled = rendering || !items().length;
  $("publish").disabled = rendering || reel.rendered_version === null || reel.public_version === reel.rendered_version;
  $("unpublish").disabled = reel.public_version === null;
  $("render-progress").hidden = !rendering;
  const pct = Math.round(100 * (reel.progress || 0));
  $("render-bar").value = pct;
  $("render-pct").textContent = new Intl.NumberFormat(lang, { style: "percent" }).format(pct / 100);
  if (reel.state === "failed" && reel.reason) showError(problem, { message: reel.reason });
  const preview = $("preview");
  if (reel.preview && !rendering) {
    if (preview.dataset.version !== String(reel.rendered_version)) {
      preview.dataset.version = String(reel.rendered_version);
      preview.poster = reel.preview.poster;
      preview.src = reel.preview.video;
    }
    preview.hidden = false;
    $("download").hidden = false;
    $("download").href = `${reelUrl}/download`;
  } else if (!reel.preview) {
    preview.hidden = true;
    $("download").hidden = true;
  }
  $("public").hidden = !reel.public_url;
  if (reel.public_url) {
    $("public-url").href = reel.public_url;
    $("public-url").textContent = reel.public_url;
    $("embed").value = reel.embed;
  }
  if (rendering && !polling) polling = setInterval(refresh, 1000);
  if (!rendering && polling) { clearInterval(polling); polling = null; }
}

// --- the preview: the reel's parts in order, drawn in the page before any rendering ----------
const CARD_FRAMES = 2 * FPS; // as workers/pieces renders a title card
let picked = 0;

// The title card as the renderer draws it: bold white text, centred on the colour, wrapped at
// 80 % of the width in at most six lines, its size a twelfth of the short side.
function drawCard(canvas, text, color) {
  const [w, h] = reel.canvas === "16:9" ? [480, 270] : reel.canvas === "1:1" ? [360, 360] : [270, 480];
  canvas.width = w;
  canvas.height = h;
  const g = canvas.getContext("2d");
  g.fillStyle = color;
  g.fillRect(0, 0, w, h);
  const size = Math.max(Math.floor(Math.min(w, h) / 12), 12);
  g.font = `700 ${size}px system-ui, sans-serif`;
  g.fillStyle = "#fff";
  g.textAlign = "center";
  g.textBaseline = "middle";
  const lines = [];
  for (const word of text.split(/\s+/)) {
    const last = lines.length ? `${lines[lines.length - 1]} ${word}` : word;
    if (lines.length && g.measureText(last).width <= w * 0.8) lines[lines.length - 1] = last;
    else lines.push(word);
  }
  const shown = lines.slice(0, 6);
  const step = size * 1.25;
  shown.forEach((line, i) => g.fillText(line, w / 2, h / 2 + (i - (shown.length - 1) / 2) * step, w * 0.8));
  return canvas;
}

// The parts in order. The title card is read from the form, which mirrors the saved reel and
// runs ahead of it while someone types or picks a colour.
function parts() {
  const c = reel.composition;
  const list = [];
  if (c.intro_asset) list.push({ kind: "asset", name: t("Intro") });
  if (form.title_on.checked) {
    list.push({ kind: "card", text: form.title_text.value || reel.title, color: form.title_color.value, frames: CARD_FRAMES });
  }
  for (const item of items()) {
    const clip = approved.get(item.clip_id);
    if (clip) list.push({ kind: "clip", clip, frames: item.trim_out - item.trim_in });
  }
  if (c.outro_asset) list.push({ kind: "asset", name: t("Outro") });
  return list;
}

function partLabel(part) {
  if (part.kind === "card") return t("Title card: %(text)s", { text: part.text });
  if (part.kind === "asset") return part.name;
  return t("%(name)s, %(length)s", { name: part.clip.member.display_name, length: duration(part.frames / FPS) });
}

function partPicture(part, big) {
  if (part.kind === "card") return drawCard(el("canvas", { "aria-hidden": "true" }), part.text, part.color);
  if (part.kind === "asset") return el("span", { class: "look-asset", "aria-hidden": "true" }, part.name);
  const clip = part.clip;
  const picture = el("span", { class: "look-clip", "aria-hidden": "true" }, el("img", { src: clip.media.poster, alt: "" }));
  if (big && reel.composition.captions) {
    picture.append(el("span", { class: "look-caption" },
      clip.caption_quote ? el("span", { class: "look-quote" }, `“${clip.caption_quote}”`) : null,
      el("span", { class: "look-name" }, clip.caption_name || clip.member.display_name)));
  }
  return picture;
}

function showPreview() {
  const c = reel.composition;
  const list = parts();
  $("look").dataset.canvas = reel.canvas;
  picked = Math.min(picked, Math.max(list.length - 1, 0));
  const fade = c.transition === "crossfade";
  const strip = [];
  list.forEach((part, index) => {
    // a crossfade joins two neighbours; a cut needs no mark
    const joined = index > 0 && fade;
    const button = el("button", { type: "button", class: "look-tile", "aria-pressed": String(index === picked),
      "aria-label": `${index + 1}. ${partLabel(part)}${joined ? ` (${t("crossfade from the one before")})` : ""}`,
      onclick: () => { picked = index; showPreview(); } },
    partPicture(part, false));
    strip.push(el("li", { class: `look-part${joined ? " faded" : ""}` },
      joined ? el("span", { class: "look-join", "aria-hidden": "true" }, "⤫") : null, button,
      el("span", { class: "look-time", "aria-hidden": "true" }, part.frames ? duration(part.frames / FPS) : "")));
  });
  $("look-strip").replaceChildren(...strip);
  const frame = $("look-frame");
  const shown = list[picked];
  frame.replaceChildren(shown ? partPicture(shown, true) : el("span", { class: "look-asset" }, t("Add clips to see the reel here.")));
  frame.setAttribute("aria-label", shown ? partLabel(shown) : t("Empty reel"));
  const joins = fade ? Math.max(list.filter((p) => p.frames).length - 1, 0) * c.crossfade_frames : 0;
  const frames = list.reduce((sum, p) => sum + (p.frames || 0), 0) - joins;
  const extras = list.some((p) => p.kind === "asset");
  const length = duration(frames / FPS);
  $("look-length").textContent = frames <= 0 ? ""
    : extras ? t("About %(length)s long, plus the intro and outro.", { length }) : t("About %(length)s long.", { length });
}

function show() {
  showItems();
  showSettings();
  showPreview();
  showRender();
}

async function refresh() {
  try {
    reel = await api("GET", reelUrl);
    show();
  } catch (error) { showError(problem, error); }
}

form.addEventListener("change", (event) => {
  const name = event.target.name;
  if (name === "title") save({ title: form.title.value });
  else if (name === "canvas") save({ canvas: form.canvas.value });
  else if (name === "transition") save({ transition: form.transition.value });
  else if (name === "crossfade_frames") save({ crossfade_frames: Number(form.crossfade_frames.value) });
  else if (name === "captions") save({ captions: form.captions.checked });
  else if (name.startsWith("title_")) {
    save({ title_card: form.title_on.checked ? { text: form.title_text.value || reel.title, color: form.title_color.value } : null });
  } else if (name.endsWith("_asset")) save({ [name]: form[name].value || null });
});
form.addEventListener("submit", (event) => event.preventDefault());
// the title card follows the typing and the colour picker at once; it is saved on change
form.addEventListener("input", (event) => {
  if (!reel || !["title_text", "title_color"].includes(event.target.name) || !form.title_on.checked) return;
  picked = parts().findIndex((p) => p.kind === "card");
  showPreview();
});

$("render").addEventListener("click", async () => {
  problem.hidden = true;
  try { reel = await api("POST", `${reelUrl}/render`); show(); } catch (error) { showError(problem, error); }
});
$("publish").addEventListener("click", async () => {
  try { reel = await api("POST", `${reelUrl}/publish`); show(); } catch (error) { showError(problem, error); }
});
$("unpublish").addEventListener("click", async () => {
  if (!window.confirm(t("Take this reel off its public page now?"))) return;
  try { reel = await api("POST", `${reelUrl}/unpublish`); show(); } catch (error) { showError(problem, error); }
});

async function loadAssets() {
  const { assets } = await api("GET", `/api/communities/${slug}/assets?limit=200`);
  for (const [name, kind] of [["music_asset", "music"], ["intro_asset", "intro"], ["outro_asset", "outro"]]) {
    const select = form[name];
    select.replaceChildren(el("option", { value: "" }, t("None")),
      ...assets.filter((a) => a.kind === kind).map((a) => el("option", { value: a.id }, a.name)));
  }
}

$("asset-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(event.target);
  const file = data.get("file");
  if (!file || !file.size) return;
  try {
    await api("POST", `/api/communities/${slug}/assets?kind=${data.get("kind")}&name=${encodeURIComponent(file.name)}`,
      file, { raw: true, headers: { "Content-Type": "application/octet-stream" } });
    await loadAssets();
    showSettings();
  } catch (error) { showError(problem, error); }
});

async function start() {
  try {
    const [{ clips }, current] = await Promise.all([
      api("GET", `/api/communities/${slug}/review?state=approved&limit=200`),
      api("GET", reelUrl)]);
    approved = new Map(clips.map((c) => [c.id, c]));
    reel = current;
    await loadAssets();
    show();
  } catch (error) { showError(problem, error); }
}
start();
