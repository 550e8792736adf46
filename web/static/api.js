// The JSON API from pages: cookie session plus the CSRF token the page carries.
import { lang, t } from "./i18n.js";

export const csrf = document.querySelector("[data-csrf]")?.dataset.csrf || "";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || t("Request failed (%(status)s)", { status: String(status) }));
    this.status = status;
    this.code = error.code;
    this.hint = error.hint;
  }
}

export async function api(method, url, body, { raw = false, headers = {} } = {}) {
  // answers (errors, reasons) come in the page's language
  const options = { method, headers: { "Accept-Language": lang, ...headers }, credentials: "same-origin" };
  if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    if (raw) {
      options.body = body;
    } else {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
  }
  const response = await fetch(url, options);
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function showError(target, error) {
  target.hidden = false;
  target.textContent = error.hint ? `${error.message} ${error.hint}` : error.message;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export const FPS = 30;
export function timecode(frames) {
  const seconds = frames / FPS;
  const m = Math.floor(seconds / 60);
  const s = (seconds % 60).toFixed(2).padStart(5, "0");
  return `${m}:${s}`;
}
