// The reels list: load, and make a new reel.
import { api, el, showError } from "./api.js";
import { label, t } from "./i18n.js";
const slug = document.getElementById("reels").dataset.community;
const problem = document.getElementById("problem");
async function load() {
  const { reels } = await api("GET", `/api/communities/${slug}/reels?limit=200`);
  document.getElementById("reel-list").replaceChildren(...reels.map((r) => el("li", {},
    el("div", { class: "grow" }, el("a", { href: `/c/${slug}/reels/${r.id}` }, r.title), " ",
      el("span", { class: "badge state", dataset: { state: r.state } }, label(r.state)), " ",
      el("span", { class: "muted" }, r.canvas)),
    r.public_url ? el("a", { href: r.public_url, class: "button small secondary" }, t("Public page")) : null)));
  document.getElementById("empty").hidden = reels.length > 0;
}
document.getElementById("new-reel").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const reel = await api("POST", `/api/communities/${slug}/reels`,
      { title: form.get("title"), canvas: form.get("canvas") });
    window.location.href = `/c/${slug}/reels/${reel.id}`;
  } catch (error) { showError(problem, error); }
});
load().catch((error) => showError(problem, error));
