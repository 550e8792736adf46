// Share a story: record full screen (upright 9:16; the file keeps exactly the crop the
// preview shows) or pick a file (type, size and length checked here before any byte is
// sent; too long: choose the part to keep), accept the release, send with tus. An unsent
// recording is kept in IndexedDB until it has been sent.
import { ApiError, csrf } from "./api.js";
import { duration, lang, size, t } from "./i18n.js";
import { Upload } from "./tus.js";

const $ = (id) => document.getElementById(id);
const root = $("share");
const cfg = root.dataset;
const maxSeconds = Number(cfg.maxSeconds);
const maxBytes = Number(cfg.maxBytes);
const families = cfg.families.split(",");
const pendingKey = `recording:${cfg.community}`;
const ASPECT = 9 / 16; // the recorder's picture: upright, as stories are watched
const LONG_SIDE = 1280;
const BOXES = ["ftyp", "moov", "mdat", "free", "wide", "skip", "pnot"]; // as the server sniffs

let tab = "record";
let stream = null;
let facing = "user";
let recorder = null;
let recorded = null; // File made from the recording
let recordedSeconds = 0;
let chosen = null; // File picked by the member, checked
let chosenSeconds = null; // its length, when the browser could read it
let keep = null; // {from, to} seconds of a too-long file
let upload = null;
const urls = new Map(); // File -> object URL

// --- small helpers -----------------------------------------------------------------------

function show(el, on = true) { el.hidden = !on; }
function say(text) { $("status").textContent = text; }
function announce(text) { $("record-status").textContent = text; }
function problem(message, hint, box = $("problem")) {
  box.textContent = "";
  if (message) {
    const strong = document.createElement("strong");
    strong.textContent = message;
    box.append(strong);
    if (hint) box.append(document.createElement("br"), hint);
  }
  show(box, Boolean(message));
}
function current() { return tab === "record" ? recorded : chosen; }
function refresh() {
  $("send").disabled = !($("consent").checked && current() && !upload);
}
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
function urlOf(file) {
  if (!urls.has(file)) urls.set(file, URL.createObjectURL(file));
  return urls.get(file);
}

// --- IndexedDB: keep an unsent recording across reloads -------------------------------

function db() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("kumpul", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("pending");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}
async function store(key, value) {
  const d = await db();
  return new Promise((resolve) => {
    const tx = d.transaction("pending", "readwrite");
    if (value === null) tx.objectStore("pending").delete(key);
    else tx.objectStore("pending").put(value, key);
    tx.oncomplete = resolve;
    tx.onerror = resolve;
  });
}
async function stored(key) {
  const d = await db();
  return new Promise((resolve) => {
    const request = d.transaction("pending").objectStore("pending").get(key);
    request.onsuccess = () => resolve(request.result || null);
    request.onerror = () => resolve(null);
  });
}

// --- what is picked: one video, its facts, its trim ---------------------------------------

function showPicked() {
  const file = current();
  show($("picked"), Boolean(file));
  show($("record-intro"), !recorded);
  if (!file) return;
  const video = $("picked-video");
  if (video.dataset.file !== file.name + file.size) {
    video.src = urlOf(file);
    video.dataset.file = file.name + file.size;
  }
  const facts = [size(file.size)];
  const seconds = tab === "record" ? recordedSeconds : chosenSeconds;
  if (seconds) facts.unshift(duration(Math.round(seconds)));
  $("picked-facts").textContent = facts.join(" · ");
  show($("trim"), tab === "file" && Boolean(keep));
  show($("retake"), tab === "record");
}

// --- tabs ----------------------------------------------------------------------------------

// the ARIA tabs pattern: one tab in the Tab order, arrows (and Home, End) move between tabs
const tabs = [...document.querySelectorAll("[data-tab]")];
function choose(button) {
  tab = button.dataset.tab;
  for (const other of tabs) {
    other.setAttribute("aria-selected", String(other === button));
    other.tabIndex = other === button ? 0 : -1;
  }
  for (const panel of document.querySelectorAll("[data-panel]")) {
    show(panel, panel.dataset.panel === tab);
  }
  problem(null);
  showPicked();
  refresh();
}
for (const button of tabs) {
  button.addEventListener("click", () => choose(button));
  button.addEventListener("keydown", (event) => {
    const at = tabs.indexOf(button);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    const next = tabs[(to + tabs.length) % tabs.length];
    choose(next);
    next.focus();
  });
}

// --- the full-screen recorder --------------------------------------------------------------

const dialog = $("recorder");
const preview = $("preview");

// which controls the recorder shows: one step at a time
function step(name) {
  dialog.dataset.step = name;
  show($("start"), name === "ready");
  show($("stop"), name === "recording");
  show($("timer"), name === "recording");
  show($("again"), name === "review");
  show($("use"), name === "review");
  show($("flip"), name === "ready" && dialog.dataset.cameras > 1);
}

function recordingType() {
  const types = ["video/webm;codecs=vp9,opus", "video/webm;codecs=vp8,opus", "video/webm",
    "video/mp4;codecs=avc1,mp4a", "video/mp4"];
  return types.find((type) => window.MediaRecorder && MediaRecorder.isTypeSupported(type)) || "";
}

function live() {
  preview.removeAttribute("src");
  preview.loop = false;
  preview.muted = true;
  preview.srcObject = stream;
  preview.classList.toggle("mirror", facing === "user");
}

function stopCamera() {
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
}

async function camera() {
  stopCamera();
  // ask for an upright picture: phones then capture it natively; a laptop's landscape
  // camera is cropped to the middle, as the preview shows and the recording keeps
  stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: facing, width: { ideal: 720 }, height: { ideal: 1280 },
      aspectRatio: { ideal: ASPECT } },
    audio: true,
  });
  const devices = await navigator.mediaDevices.enumerateDevices();
  dialog.dataset.cameras = devices.filter((d) => d.kind === "videoinput").length;
  live();
}

$("camera").addEventListener("click", async () => {
  problem(null);
  problem(null, null, $("rec-problem"));
  dialog.showModal();
  step("starting");
  try {
    await camera();
  } catch {
    dialog.close();
    problem(t("We couldn't use your camera."),
      t("Allow camera and microphone for this site, or choose a file instead."));
    $("camera").focus();
    return;
  }
  step("ready");
  $("start").focus();
});

$("flip").addEventListener("click", async () => {
  facing = facing === "user" ? "environment" : "user";
  try {
    await camera();
  } catch {
    problem(t("We couldn't switch the camera."), null, $("rec-problem"));
  }
});

async function countdown() {
  const box = $("countdown");
  show(box);
  box.focus(); // read out as it runs
  for (const n of [3, 2, 1]) {
    box.textContent = String(n);
    await new Promise((r) => setTimeout(r, 1000));
  }
  show(box, false);
}

// The centre of the camera's picture at 9:16, as `object-fit: cover` shows it in the preview.
function crop(width, height) {
  const cw = Math.min(width, Math.round(height * ASPECT));
  const ch = Math.min(height, Math.round(width / ASPECT));
  const outH = Math.min(ch, LONG_SIDE) & ~1;
  return { sx: (width - cw) / 2, sy: (height - ch) / 2, cw, ch, outW: Math.round(outH * ASPECT) & ~1, outH };
}

// The recorded picture: the preview's crop drawn frame by frame onto a canvas.
function framed() {
  const c = crop(preview.videoWidth, preview.videoHeight);
  const canvas = document.createElement("canvas");
  canvas.width = c.outW;
  canvas.height = c.outH;
  const ctx = canvas.getContext("2d", { alpha: false });
  let on = true;
  const draw = () => {
    if (!on) return;
    ctx.drawImage(preview, c.sx, c.sy, c.cw, c.ch, 0, 0, c.outW, c.outH);
    if (preview.requestVideoFrameCallback) preview.requestVideoFrameCallback(draw);
    else setTimeout(draw, 33);
  };
  draw();
  const video = canvas.captureStream(30).getVideoTracks();
  return { stream: new MediaStream([...video, ...stream.getAudioTracks()]), stop: () => { on = false; } };
}

$("start").addEventListener("click", async () => {
  step("counting");
  await countdown();
  if (!stream) return; // closed during the countdown
  const type = recordingType();
  const chunks = [];
  const picture = framed();
  recorder = new MediaRecorder(picture.stream, type ? { mimeType: type } : undefined);
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  let elapsed = 0;
  const timer = $("timer");
  timer.textContent = `0:00 / ${clock(maxSeconds)}`;
  step("recording");
  $("stop").focus();
  announce(t("Recording. You can record up to %(max_seconds)s.", { max_seconds: maxSeconds }));
  const tick = setInterval(() => {
    elapsed += 1;
    timer.textContent = `${clock(elapsed)} / ${clock(maxSeconds)}`;
    const left = maxSeconds - elapsed; // spoken now and then rather than every second
    if (left === 10) announce(t("%(left_seconds)s left.", { left_seconds: left }));
    else if (elapsed % 30 === 0 && left > 0) announce(t("%(elapsed_seconds)s recorded.", { elapsed_seconds: elapsed }));
    if (elapsed >= maxSeconds) $("stop").click();
  }, 1000);
  recorder.onstop = async () => {
    clearInterval(tick);
    picture.stop();
    if (!dialog.open) return; // closed while recording: nothing kept
    const mime = (recorder.mimeType || type || "video/webm").split(";")[0];
    const ext = mime === "video/mp4" ? "mp4" : "webm";
    recorded = new File(chunks, `story-${Date.now()}.${ext}`, { type: mime, lastModified: Date.now() });
    recordedSeconds = elapsed;
    await store(pendingKey, recorded);
    preview.srcObject = null;
    preview.classList.remove("mirror");
    preview.src = urlOf(recorded);
    preview.muted = false;
    preview.loop = true;
    preview.play().catch(() => {});
    step("review");
    announce(t("Recorded %(length)s. Watch it back, then send it.", { length: clock(elapsed) }));
    $("use").focus();
  };
  recorder.start(1000);
});

$("stop").addEventListener("click", () => {
  if (recorder && recorder.state !== "inactive") recorder.stop();
});

$("again").addEventListener("click", async () => {
  recorded = null;
  await store(pendingKey, null);
  live();
  step("ready");
  announce("");
  $("start").focus();
});

function leave() {
  if (recorder && recorder.state !== "inactive") recorder.stop();
  stopCamera();
  preview.pause();
  if (dialog.open) dialog.close();
  showPicked();
  refresh();
  if (recorded) {
    say(t("Recorded %(length)s. Watch it back, then send it.", { length: clock(recordedSeconds) }));
    ($("consent").checked ? $("send") : $("consent")).focus();
  } else {
    $("camera").focus();
  }
}
$("use").addEventListener("click", leave);
$("close").addEventListener("click", leave);
dialog.addEventListener("cancel", (event) => { event.preventDefault(); leave(); });

$("retake").addEventListener("click", async () => {
  recorded = null;
  await store(pendingKey, null);
  say("");
  showPicked();
  refresh();
  $("camera").click();
});

// --- a file from the phone: checked here first ----------------------------------------------

async function familyOf(file) {
  const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return "matroska";
  return BOXES.includes(String.fromCharCode(...head.slice(4, 8))) ? "mov" : null;
}

// The length the container declares, read by the browser (null when it can't read it).
function lengthOf(file) {
  return new Promise((resolve) => {
    const probe = document.createElement("video");
    const done = (value) => {
      clearTimeout(timeout);
      probe.removeAttribute("src");
      resolve(value);
    };
    const timeout = setTimeout(() => done(null), 10000);
    probe.preload = "metadata";
    probe.muted = true;
    probe.onerror = () => done(null);
    probe.onloadedmetadata = () => {
      if (Number.isFinite(probe.duration)) return done(probe.duration);
      // a browser's own WebM recording declares no length: seeking to the end finds it
      probe.ondurationchange = () => { if (Number.isFinite(probe.duration)) done(probe.duration); };
      probe.currentTime = 1e9;
    };
    probe.src = urlOf(file);
  });
}

function keepSays() {
  const length = keep.to - keep.from;
  $("keep-says").textContent = t("Keeping %(from)s to %(to)s (%(length_seconds)s).",
    { from: clock(keep.from), to: clock(keep.to), length_seconds: Math.round(length) });
  for (const [id, value] of [["keep-from", keep.from], ["keep-to", keep.to]]) {
    $(id).value = value;
    $(id).setAttribute("aria-valuetext", clock(value));
  }
  const range = document.querySelector(".keep-range");
  range.style.setProperty("--from", `${(100 * keep.from) / chosenSeconds}%`);
  range.style.setProperty("--to", `${(100 * keep.to) / chosenSeconds}%`);
}

// the handles keep at most the longest story between them, and at least a second
function moved(which) {
  const from = Number($("keep-from").value);
  const to = Number($("keep-to").value);
  if (which === "from") keep = { from: Math.min(from, chosenSeconds - 1), to: Math.min(Math.max(to, from + 1), from + maxSeconds) };
  else keep = { from: Math.max(Math.min(from, to - 1), to - maxSeconds, 0), to: Math.max(to, 1) };
  keepSays();
  $("picked-video").currentTime = which === "from" ? keep.from : keep.to;
}
$("keep-from").addEventListener("input", () => moved("from"));
$("keep-to").addEventListener("input", () => moved("to"));
$("picked-video").addEventListener("timeupdate", () => { // the kept part plays on a loop
  const video = $("picked-video");
  if (tab === "file" && keep && (video.currentTime < keep.from - 0.3 || video.currentTime > keep.to)) {
    video.currentTime = keep.from;
  }
});

$("file").addEventListener("change", async () => {
  problem(null);
  say("");
  chosen = null;
  keep = null;
  chosenSeconds = null;
  showPicked();
  refresh();
  const file = $("file").files[0];
  if (!file) return;
  const refuse = (message, hint) => {
    problem(message, hint);
    $("file").value = "";
    $("file").focus();
  };
  if (file.size > maxBytes) {
    return refuse(t("This file is %(size_bytes)s; stories can be at most %(max_bytes)s.",
      { size_bytes: file.size, max_bytes: maxBytes }),
    t("Trim the video or record it at a lower quality, then try again."));
  }
  if (file.size === 0 || !families.includes(await familyOf(file))) {
    return refuse(t("This file type isn't supported."), t("Send an MP4, MOV or WebM video."));
  }
  say(t("Checking your video…"));
  chosenSeconds = await lengthOf(file);
  chosen = file;
  say("");
  if (chosenSeconds && chosenSeconds > maxSeconds + 0.5) {
    keep = { from: 0, to: maxSeconds };
    for (const id of ["keep-from", "keep-to"]) $(id).max = chosenSeconds.toFixed(1);
    keepSays();
    // not an error: the handles right under the reason are the way on
    const why = t("This video is %(length_seconds)s long; stories can be at most %(max_seconds)s.",
      { length_seconds: Math.round(chosenSeconds), max_seconds: maxSeconds });
    const how = t("Choose the part to keep below: only that part is used.");
    $("keep-why").textContent = `${why} ${how}`;
  }
  showPicked();
  refresh();
  (keep ? $("keep-from") : $("consent")).focus();
});

$("consent").addEventListener("change", refresh);

// --- sending -------------------------------------------------------------------------------

function progress(sent, total) {
  const pct = total ? Math.floor((sent / total) * 100) : 0;
  $("bar").value = pct;
  $("progress-text").textContent = new Intl.NumberFormat(lang, { style: "percent" }).format(pct / 100);
}

function refused(error) {
  try {
    const body = JSON.parse(error.body);
    return body.error.message ? new ApiError(error.status, body) : null;
  } catch {
    return null;
  }
}

function send() {
  const file = current();
  if (!file) return;
  const trimmed = tab === "file" && keep;
  problem(null);
  progress(0, 1);
  show($("progress"));
  upload = { file };
  refresh();
  const metadata = {
    community: cfg.community, release: cfg.release, release_language: cfg.releaseLanguage,
    filename: file.name, filetype: file.type, title: $("title").value.trim(),
    source: file === recorded ? "recording" : "upload", prompt: cfg.prompt,
    keep_from: trimmed ? keep.from.toFixed(1) : "", keep_to: trimmed ? keep.to.toFixed(1) : "",
  };
  const fingerprint = [cfg.community, file.name, file.size, file.lastModified, metadata.keep_from,
    metadata.keep_to].join(":");
  upload = new Upload(file, {
    endpoint: "/api/uploads",
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000],
    metadata,
    fingerprint,
    headers: { "X-CSRF-Token": csrf, "Accept-Language": lang },
    onProgress: progress,
    onSuccess: async () => {
      if (file === recorded) {
        await store(pendingKey, null);
        recorded = null;
      } else {
        chosen = null;
        keep = null;
        $("file").value = "";
      }
      upload = null;
      showPicked(); // sent: ready for another story
      refresh();
      say(t("Sent! We're checking your video now."));
      const link = document.createElement("a");
      link.href = `/c/${cfg.community}/stories`;
      link.textContent = t("Follow it in My stories");
      $("status").append(" ", link);
      link.focus(); // where to go next
    },
    onError: (err) => {
      const answer = refused(err);
      show($("progress"), false); // an error, never a bar beside it
      say("");
      if (answer) problem(answer.message, answer.hint);
      else problem(t("The connection dropped."), t("Try again when you're back online: it carries on where it stopped."));
      upload = null;
      refresh();
      $("send").focus();
    },
  });
  say(upload.resumable() ? t("Picking up where the last attempt stopped…") : t("Sending…"));
  $("status").focus(); // the send button is disabled while sending: the status says how it goes
  upload.start();
}

$("send").addEventListener("click", send);
window.addEventListener("online", () => { if (upload && upload.start) upload.start(); });

// A recording that was not sent before the page went away is offered again.
stored(pendingKey).then((file) => {
  if (!file || recorded) return;
  recorded = file;
  showPicked();
  say(t("Your last recording wasn't sent yet. Tick the box and send it."));
  refresh();
});
