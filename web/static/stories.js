// My stories: states update live from the server (server-sent events); withdraw any story.
import { api } from "./api.js";
import { t } from "./i18n.js";

const root = document.getElementById("stories");
const slug = root.dataset.community;
const list = document.getElementById("clip-list");

const LABELS = {
  uploading: t("sending"), uploaded: t("received"), processing: t("preparing"),
  ready_for_review: t("waiting for review"), approved: t("approved"), rejected: t("not chosen"),
  invalid: t("can't be used"), failed: t("not prepared"), withdrawn: t("withdrawn"),
};

const known = new Map(); // id -> latest full view of the clip

function render(update) {
  const clip = { ...(known.get(update.id) || {}), ...update };
  known.set(clip.id, clip);
  let item = list.querySelector(`[data-clip="${clip.id}"]`);
  if (!item) {
    item = document.createElement("li");
    item.dataset.clip = clip.id;
    item.innerHTML = '<div class="grow"><strong class="clip-title"></strong> '
      + '<span class="badge state"></span><div class="reason"></div></div>';
    list.prepend(item);
  }
  if (clip.title || clip.filename) {
    item.querySelector(".clip-title").textContent = clip.title || clip.filename;
  }
  const badge = item.querySelector(".state");
  badge.dataset.state = clip.state;
  badge.textContent = LABELS[clip.state] || clip.state;
  item.querySelector(".reason").textContent = clip.reason ? `${clip.reason} ${clip.hint || ""}` : "";
  let bar = item.querySelector(".sending");
  if (!bar) {
    bar = document.createElement("progress");
    bar.className = "sending";
    bar.max = 100;
    item.querySelector(".grow").append(bar);
  }
  const sending = clip.state === "uploading" && clip.length;
  const preparing = clip.state === "processing" && typeof clip.progress === "number";
  bar.hidden = !(sending || preparing);
  if (sending) bar.value = Math.floor((100 * clip.offset) / clip.length);
  if (preparing) bar.value = Math.floor(100 * clip.progress);
  let button = item.querySelector("button.withdraw");
  if (clip.state === "withdrawn") {
    if (button) button.remove();
  } else if (!button) {
    button = document.createElement("button");
    button.className = "small secondary withdraw";
    button.textContent = t("Withdraw");
    button.addEventListener("click", () => withdraw(clip.id));
    item.append(button);
  }
  document.getElementById("empty").hidden = true;
}

async function withdraw(id) {
  if (!window.confirm(t("Withdraw this story? It will be removed from every reel and deleted."))) return;
  try {
    render(await api("POST", `/api/communities/${slug}/clips/${id}/withdraw`));
  } catch (error) {
    window.alert(`${error.message} ${error.hint || ""}`);
  }
}

for (const item of list.querySelectorAll("li")) {
  const badge = item.querySelector(".state");
  badge.textContent = LABELS[badge.dataset.state] || badge.dataset.state;
}

const events = new EventSource(`/api/communities/${slug}/clips/events`);
events.onmessage = (message) => render(JSON.parse(message.data));
