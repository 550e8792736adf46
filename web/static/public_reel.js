// The public reel page's sharing: copy the link or the embed code, or the phone's own share
// sheet where there is one. (WhatsApp is a plain link and works without this script.)
import { t } from "./i18n.js";

const cta = document.querySelector(".share-cta");
const said = document.getElementById("share-said");
const { url, title } = cta.dataset;

async function copy(text, done) {
  try {
    await navigator.clipboard.writeText(text);
    said.textContent = done;
  } catch {
    said.textContent = t("Select and copy");
  }
}

document.getElementById("copy-link").addEventListener("click", () => copy(url, t("Link copied.")));
document.getElementById("copy-code").addEventListener("click", () => {
  document.getElementById("embed-code").select();
  copy(document.getElementById("embed-code").value, t("Embed code copied."));
});

const native = document.getElementById("native-share");
if (navigator.share) {
  native.hidden = false;
  native.addEventListener("click", async () => {
    try {
      await navigator.share({ title, text: title, url });
    } catch {
      // closed without sharing: nothing to say
    }
  });
}
