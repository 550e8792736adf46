// The admin page's Brand form: a picture over the size limit is refused before it is sent.
const form = document.querySelector(".brand-form");
const file = form.querySelector("input[name=logo]");
const colour = form.querySelector("input[name=colour]");
const tooLarge = form.querySelector("[data-too-large]");

function tooBig() {
  return Boolean(file.files[0] && file.files[0].size > Number(form.dataset.maxBytes));
}
file.addEventListener("change", () => { tooLarge.hidden = !tooBig(); });
form.addEventListener("submit", (event) => {
  if (tooBig()) {
    event.preventDefault();
    tooLarge.hidden = false;
    file.focus();
  }
});
// picking a colour means using it
colour.addEventListener("input", () => { form.querySelector("input[name=default_colour]").checked = false; });
