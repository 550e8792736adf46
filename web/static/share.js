// Share a story: record with the camera or pick a file, accept the release, upload with tus.
// Uploads resume after a network drop (tus retries) or a reload (stored fingerprint; an
// unsent recording is kept in IndexedDB until it has been sent).
import { ApiError, csrf } from "./api.js";
import { lang, t } from "./i18n.js";

const root = document.getElementById("share");
const cfg = root.dataset;
const $ = (id) => document.getElementById(id);
const maxSeconds = Number(cfg.maxSeconds);
const maxBytes = Number(cfg.maxBytes);
const pendingKey = `recording:${cfg.community}`;

let tab = "record";
let stream = null;
let recorder = null;
let recorded = null; // File made from the recording
let chosen = null; // File picked by the member
let upload = null;

// --- small helpers -----------------------------------------------------------------------

function show(el, on = true) { el.hidden = !on; }
function say(text) { $("status").textContent = text; }
function announce(text) { $("record-status").textContent = text; } // the recording, for screen readers
function problem(message, hint) {
  const box = $("problem");
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
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
// The server's refusal of an upload, or null when the connection dropped.
function serverError(err) {
  try {
    const response = err.originalResponse;
    const body = JSON.parse(response.getBody());
    return body.error.message ? new ApiError(response.getStatus(), body) : null;
  } catch {
    return null;
  }
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
async function keep(key, value) {
  const d = await db();
  return new Promise((resolve) => {
    const tx = d.transaction("pending", "readwrite");
    if (value === null) tx.objectStore("pending").delete(key);
    else tx.objectStore("pending").put(value, key);
    tx.oncomplete = resolve;
    tx.onerror = resolve;
  });
}
async function kept(key) {
  const d = await db();
  return new Promise((resolve) => {
    const request = d.transaction("pending").objectStore("pending").get(key);
    request.onsuccess = () => resolve(request.result || null);
    request.onerror = () => resolve(null);
  });
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

// --- recording -----------------------------------------------------------------------------

function recordingType() {
  const types = ["video/webm;codecs=vp9,opus", "video/webm;codecs=vp8,opus", "video/webm",
    "video/mp4;codecs=avc1,mp4a", "video/mp4"];
  return types.find((type) => window.MediaRecorder && MediaRecorder.isTypeSupported(type)) || "";
}

function live() {
  const video = $("preview");
  video.removeAttribute("src");
  video.controls = false;
  video.muted = true;
  video.srcObject = stream;
}

$("camera").addEventListener("click", async () => {
  problem(null);
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: true,
    });
  } catch (err) {
    problem(t("We couldn't use your camera."),
      t("Allow camera and microphone for this site, or choose a file instead."));
    return;
  }
  live();
  show($("camera"), false);
  show($("start"));
  $("start").focus(); // the camera button is gone: the next step takes the focus
});

async function countdown() {
  const box = $("countdown");
  show(box);
  box.focus(); // the start button is gone; the countdown is read out as it runs
  for (const n of [3, 2, 1]) {
    box.textContent = String(n);
    await new Promise((r) => setTimeout(r, 1000));
  }
  show(box, false);
}

$("start").addEventListener("click", async () => {
  show($("start"), false);
  show($("retake"), false);
  await countdown();
  const type = recordingType();
  const chunks = [];
  recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  recorder.onstop = async () => {
    const mime = (recorder.mimeType || type || "video/webm").split(";")[0];
    const ext = mime === "video/mp4" ? "mp4" : "webm";
    recorded = new File(chunks, `story-${Date.now()}.${ext}`, { type: mime, lastModified: Date.now() });
    await keep(pendingKey, recorded);
    const video = $("preview");
    video.srcObject = null;
    video.src = URL.createObjectURL(recorded);
    video.muted = false;
    video.controls = true;
    show($("stop"), false);
    show($("timer"), false);
    show($("retake"));
    say(t("Recorded %(length)s. Watch it back, then send it.", { length: clock(elapsed) }));
    announce("");
    refresh();
    // the next step: agree to the release, or send when that is done
    ($("consent").checked ? $("send") : $("consent")).focus();
  };
  let elapsed = 0;
  const timer = $("timer");
  timer.textContent = `0:00 / ${clock(maxSeconds)}`;
  show(timer);
  announce(t("Recording. You can record up to %(max_seconds)s.", { max_seconds: maxSeconds }));
  const tick = setInterval(() => {
    elapsed += 1;
    timer.textContent = `${clock(elapsed)} / ${clock(maxSeconds)}`;
    // the timer, spoken now and then rather than every second
    const left = maxSeconds - elapsed;
    if (left === 10) announce(t("%(left_seconds)s left.", { left_seconds: left }));
    else if (elapsed % 30 === 0 && left > 0) announce(t("%(elapsed_seconds)s recorded.", { elapsed_seconds: elapsed }));
    if (elapsed >= maxSeconds) $("stop").click();
  }, 1000);
  recorder.addEventListener("stop", () => clearInterval(tick));
  recorder.start(1000);
  show($("stop"));
  $("stop").focus();
});

$("stop").addEventListener("click", () => {
  if (recorder && recorder.state !== "inactive") recorder.stop();
});

$("retake").addEventListener("click", async () => {
  recorded = null;
  await keep(pendingKey, null);
  live();
  show($("retake"), false);
  show($("start"));
  say("");
  refresh();
  $("start").focus();
});

// --- a file from the phone -----------------------------------------------------------------

$("file").addEventListener("change", () => {
  problem(null);
  chosen = $("file").files[0] || null;
  if (chosen && chosen.size > maxBytes) {
    problem(t("This file is %(size_bytes)s; stories can be at most %(max_bytes)s.",
      { size_bytes: chosen.size, max_bytes: maxBytes }),
    t("Trim the video or record it at a lower quality, then try again."));
    chosen = null;
  }
  refresh();
});

$("consent").addEventListener("change", refresh);

// --- sending -------------------------------------------------------------------------------

function progress(sent, total) {
  const pct = total ? Math.floor((sent / total) * 100) : 0;
  $("bar").value = pct;
  $("progress-text").textContent = new Intl.NumberFormat(lang, { style: "percent" }).format(pct / 100);
}

async function send() {
  const file = current();
  if (!file) return;
  problem(null);
  show($("progress"));
  $("send").disabled = true;
  const metadata = {
    community: cfg.community, release: cfg.release, release_language: cfg.releaseLanguage,
    filename: file.name,
    filetype: file.type, title: $("title").value.trim(),
    source: file === recorded ? "recording" : "upload",
  };
  if (cfg.prompt) metadata.prompt = cfg.prompt;
  upload = new tus.Upload(file, {
    endpoint: "/api/uploads",
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000],
    metadata,
    headers: { "X-CSRF-Token": csrf, "Accept-Language": lang },
    removeFingerprintOnSuccess: true,
    onProgress: progress,
    onSuccess: async () => {
      progress(1, 1);
      if (file === recorded) await keep(pendingKey, null);
      say(t("Sent! We're checking your video now."));
      const link = document.createElement("a");
      link.href = `/c/${cfg.community}/stories`;
      link.textContent = t("Follow it in My stories");
      $("status").append(" ", link);
      link.focus(); // where to go next
      upload = null;
    },
    onError: (err) => {
      const refused = serverError(err);
      if (refused) {
        problem(refused.message, refused.hint);
        upload = null;
        refresh();
        $("send").focus();
      } else {
        problem(t("The connection dropped."), t("We'll carry on from where it stopped when you're back online."));
      }
    },
  });
  const previous = await upload.findPreviousUploads();
  if (previous.length) {
    upload.resumeFromPreviousUpload(previous[0]);
    say(t("Picking up where the last attempt stopped…"));
  } else {
    say(t("Sending…"));
  }
  $("status").focus(); // the send button is disabled while sending: the status says how it goes
  upload.start();
}

$("send").addEventListener("click", send);
window.addEventListener("online", () => {
  if (upload) {
    problem(null);
    upload.start();
  }
});

// A recording that was not sent before the page went away is offered again.
kept(pendingKey).then((file) => {
  if (!file) return;
  recorded = file;
  const video = $("preview");
  video.src = URL.createObjectURL(file);
  video.controls = true;
  show($("camera"), false);
  show($("retake"));
  say(t("Your last recording wasn't sent yet. Tick the box and send it."));
  refresh();
});
