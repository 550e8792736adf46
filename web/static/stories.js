// My stories: states update live from the server (server-sent events); a story plays in
// place; Withdraw where there is something to take back.
import { api, el } from "./api.js";
import { duration, t, when } from "./i18n.js";
import { playInPlace } from "./inplace.js";

const root = document.getElementById("stories");
const slug = root.dataset.community;
const list = document.getElementById("clip-list");

const LABELS = {
  uploading: t("sending"), uploaded: t("received"), processing: t("preparing"),
  ready_for_review: t("waiting for review"), approved: t("approved"), rejected: t("not chosen"),
  invalid: t("can't be used"), failed: t("not prepared"), withdrawn: t("withdrawn"),
};
const WITHDRAWABLE = new Set(["uploaded", "processing", "failed", "ready_for_review", "approved", "rejected"]);
const WATCHABLE = new Set(["ready_for_review", "approved", "rejected"]);

const known = new Map(); // id -> latest view of the clip
const q = (item, selector) => item.querySelector(selector);

function clock(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function thumb(item, clip) {
  const box = q(item, ".story-thumb");
  if (!clip.media || q(box, "button, video")) return;
  const name = clip.title || clip.filename;
  const button = el("button", { type: "button", class: "play", "aria-label": t("Play %(title)s", { title: name }),
    dataset: { video: clip.media.web, poster: clip.media.poster } }, el("img", { src: clip.media.poster, alt: "" }));
  box.replaceChildren(button, el("span", { class: "story-length", "aria-hidden": "true" },
    clip.duration ? clock(clip.duration) : ""));
  if (clip.duration) {
    q(item, ".muted").append(" · ", el("span", { class: "clip-length" }, duration(Math.round(clip.duration))));
  }
  for (const reel of clip.reels || []) {
    q(item, ".sending").before(el("p", { class: "in-reel" }, el("span", { "aria-hidden": "true" }, "🎬"), " ",
      t("Your story is in"), " ", el("a", { href: reel.url }, reel.title)));
  }
}

function item(clip) {
  const made = el("li", { class: "story", dataset: { clip: clip.id } },
    el("div", { class: "story-thumb" }, el("span", { class: "no-thumb", "aria-hidden": "true" })),
    el("div", { class: "grow" },
      el("strong", { class: "clip-title" }), " ", el("span", { class: "badge state" }), el("br"),
      el("small", { class: "muted" }, el("time", { datetime: clip.updated_at }, when(clip.updated_at))),
      el("p", { class: "reason", hidden: true }),
      el("p", { class: "note", hidden: true }, el("span", { class: "muted" }, t("Moderator's note:")), " ", el("q")),
      el("progress", { class: "sending", max: "100", hidden: true })));
  list.prepend(made);
  return made;
}

// the whole view of a clip that became watchable (poster, video, length, reels)
const fetched = new Set();
async function fetchView(id) {
  if (fetched.has(id)) return;
  fetched.add(id);
  try {
    const found = (await api("GET", `/api/communities/${slug}/clips/mine?limit=50`)).clips.find((c) => c.id === id);
    if (found) render(found);
  } catch {
    // the page still shows the state; a reload shows the rest
  }
}

function render(update) {
  const clip = { ...(known.get(update.id) || {}), ...update };
  known.set(clip.id, clip);
  const entry = list.querySelector(`[data-clip="${clip.id}"]`) || item(clip);
  if (clip.title || clip.filename) q(entry, ".clip-title").textContent = clip.title || clip.filename;
  const badge = q(entry, ".state");
  badge.dataset.state = clip.state;
  badge.textContent = LABELS[clip.state] || clip.state;
  // a rejection's hint is the moderator's own words: apart from the reason
  const note = clip.state === "rejected" ? (update.note || update.hint) : null;
  const reason = q(entry, ".reason");
  reason.textContent = clip.reason ? `${clip.reason} ${note ? "" : clip.hint || ""}`.trim() : "";
  reason.hidden = !clip.reason;
  q(entry, ".note q").textContent = note || "";
  q(entry, ".note").hidden = !note;
  const bar = q(entry, ".sending");
  const sending = clip.state === "uploading" && clip.length;
  const preparing = clip.state === "processing" && typeof clip.progress === "number";
  bar.hidden = !(sending || preparing);
  if (sending) bar.value = Math.floor((100 * clip.offset) / clip.length);
  if (preparing) bar.value = Math.floor(100 * clip.progress);
  // Withdraw where the story is on its way or in use; one that can't be used is removed
  const action = WITHDRAWABLE.has(clip.state) ? "withdraw" : clip.state === "invalid" ? "remove" : null;
  let button = q(entry, "button.withdraw");
  if (button && (button.hasAttribute("data-remove") ? "remove" : "withdraw") !== action) {
    button.remove();
    button = null;
  }
  if (action && !button) {
    entry.append(el("button", { type: "button", class: "small secondary withdraw", "data-remove": action === "remove" },
      action === "remove" ? t("Remove") : t("Withdraw")));
  }
  if (!WATCHABLE.has(clip.state)) {
    const box = q(entry, ".story-thumb");
    if (q(box, "button, video")) box.replaceChildren(el("span", { class: "no-thumb", "aria-hidden": "true" }));
  } else if (clip.media) {
    thumb(entry, clip);
  } else if (!q(q(entry, ".story-thumb"), "button, video")) {
    fetchView(clip.id);
  }
  document.getElementById("empty").hidden = true;
}

async function withdraw(id, remove) {
  const question = remove ? t("Remove this video? It will be deleted.")
    : t("Withdraw this story? It will be removed from every reel and deleted.");
  if (!window.confirm(question)) return;
  try {
    render(await api("POST", `/api/communities/${slug}/clips/${id}/withdraw`));
  } catch (error) {
    window.alert(`${error.message} ${error.hint || ""}`);
  }
}

list.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  const id = target.closest("[data-clip]").dataset.clip;
  if (target.classList.contains("withdraw")) withdraw(id, target.hasAttribute("data-remove"));
  else if (target.classList.contains("play")) playInPlace(target);
});

for (const entry of list.querySelectorAll("li")) {
  const badge = q(entry, ".state");
  badge.textContent = LABELS[badge.dataset.state] || badge.dataset.state;
}

const events = new EventSource(`/api/communities/${slug}/clips/events`);
events.onmessage = (message) => render(JSON.parse(message.data));
