// The community page: a countdown to each upcoming session (and its start in this device's
// own zone when that differs from the page's), replays that play in place.
import { el } from "./api.js";
import { lang, t, zone } from "./i18n.js";
import { playInPlace } from "./inplace.js";

const relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
const here = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** "in 3 days", "in 5 hours", "in 12 minutes", in the page's language. */
function until(ms) {
  const minutes = Math.ceil(ms / 60000);
  if (minutes >= 2 * 24 * 60) return relative.format(Math.floor(minutes / (24 * 60)), "day");
  if (minutes >= 120) return relative.format(Math.floor(minutes / 60), "hour");
  return relative.format(minutes, "minute");
}

const counters = [...document.querySelectorAll("[data-countdown]")];
function tick() {
  for (const counter of counters) {
    const left = new Date(counter.dataset.countdown) - Date.now();
    counter.textContent = left > 30000 ? t("Starts %(when)s", { when: until(left) }) : t("Starting now");
    counter.hidden = false;
  }
}
if (counters.length) {
  tick();
  setInterval(tick, 15000);
}

// a member away from the community's zone also sees the start in their device's zone
if (here && here !== zone) {
  const format = new Intl.DateTimeFormat(lang, { timeZone: here, hour: "numeric", minute: "2-digit",
    weekday: "short", timeZoneName: "short" });
  for (const time of document.querySelectorAll("time.starts")) {
    time.after(el("span", { class: "muted here-time" }, ` · ${t("your time: %(time)s", { time: format.format(new Date(time.dateTime)) })}`));
  }
}

document.getElementById("past-sessions")?.addEventListener("click", (event) => {
  const button = event.target.closest("button.play");
  if (button) playInPlace(button);
});
