// The bell: its unread count follows the person's notices live (server-sent events).
import { t } from "./i18n.js";

const bell = document.querySelector("[data-bell]");
if (bell && "EventSource" in window) {
  const count = bell.querySelector("[data-unread]");
  const show = (unread) => {
    count.textContent = String(unread);
    count.hidden = unread === 0;
    bell.setAttribute("aria-label", t("Notifications, %(count)s unread", { count: unread }));
    bell.dataset.count = String(unread);
  };
  const events = new EventSource("/api/notifications/events");
  events.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (typeof data.unread === "number") show(data.unread);
  });
}
