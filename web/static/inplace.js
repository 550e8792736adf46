// A poster button that becomes its video: pages list many videos without loading any.
import { el } from "./api.js";

export function playInPlace(button) {
  const video = el("video", { src: button.dataset.video, poster: button.dataset.poster, controls: true,
    playsinline: true, autoplay: true, "aria-label": button.getAttribute("aria-label") });
  button.parentElement.querySelector(".story-length")?.remove(); // the player shows the length
  button.replaceWith(video);
  video.focus();
}
