// The page's words, times and numbers in the reader's language and time zone.
// The server renders <html lang data-tz data-catalog>; the catalog (the page scripts'
// messages, as JSON under a content-hashed URL cached for a year) is fetched once.

const root = document.documentElement;
export const lang = root.lang || "id";
export const zone = root.dataset.tz || "Asia/Jakarta";
const url = root.dataset.catalog;
const messages = url
  ? await fetch(url, { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : {})).catch(() => ({}))
  : {};

// Indonesia's zones by the names people use, in every language (as the server writes them)
const ZONE_NAMES = { "Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT" };

/** The message in the page's language, its %(name)s placeholders filled. */
export function t(message, params = {}) {
  const text = messages[message] || message;
  return text.replace(/%\((\w+)\)s|%%/g, (whole, name) => {
    if (name === undefined) return "%";
    return name in params ? value(name, params[name]) : whole;
  });
}

function value(name, v) {
  if (typeof v === "number") {
    if (name.endsWith("seconds")) return duration(v);
    if (name.endsWith("bytes")) return size(v);
    return number(v);
  }
  return String(v);
}

export function number(v, digits) {
  const options = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
  return new Intl.NumberFormat(lang, options).format(v);
}

/** "3 menit", "1 menit 30 detik": as people say it. */
export function duration(seconds) {
  const unit = (u, n, digits) => new Intl.NumberFormat(lang, {
    style: "unit", unit: u, unitDisplay: "long",
    ...(digits ? { maximumFractionDigits: digits } : {}) }).format(n);
  if (seconds > 0 && seconds < 10 && Math.abs(seconds - Math.round(seconds)) >= 0.05) {
    return unit("second", seconds, 1);
  }
  const whole = Math.round(seconds);
  const parts = [[Math.floor(whole / 3600), "hour"], [Math.floor((whole % 3600) / 60), "minute"], [whole % 60, "second"]];
  const said = parts.filter(([n]) => n).map(([n, u]) => unit(u, n));
  return said.length ? said.join(" ") : unit("second", 0);
}

export function size(bytes) {
  for (const [unit, scale] of [["GB", 1e9], ["MB", 1e6], ["kB", 1e3]]) {
    if (bytes >= scale) return `${number(Math.round((bytes / scale) * 10) / 10)} ${unit}`;
  }
  return t("%(n)s bytes", { n: bytes });
}

/** "Sabtu, 5 Des 2026 19.00 WIB": a moment in the reader's zone, written as the server does. */
export function when(iso) {
  // Babel's "EEEE, d MMM y" in both languages, then the time as the locale joins them
  const parts = Object.fromEntries(new Intl.DateTimeFormat(lang, { timeZone: zone, weekday: "long",
    day: "numeric", month: "short", year: "numeric" }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  const date = `${parts.weekday}, ${parts.day} ${parts.month} ${parts.year}`;
  return `${date}${lang === "en" ? ", " : " "}${time(iso)}`;
}

export function time(iso) {
  const moment = new Date(iso);
  // CLDR (and so Babel) puts a narrow no-break space before AM/PM
  const clock = new Intl.DateTimeFormat(lang, { timeZone: zone, hour: "numeric", minute: "2-digit" })
    .format(moment).replace(/\s(?=[AP]M)/, "\u202f");
  const name = ZONE_NAMES[zone] || new Intl.DateTimeFormat(lang, { timeZone: zone, timeZoneName: "short" })
    .formatToParts(moment).find((p) => p.type === "timeZoneName")?.value || zone;
  return `${clock} ${name}`;
}

// Roles and states are English identifiers in the API; these are their words
const LABELS = {
  owner: t("owner"), host: t("host"), moderator: t("moderator"), member: t("member"),
  scheduled: t("upcoming"), live: t("live now"), ended: t("ended"),
  uploading: t("uploading"), uploaded: t("uploaded"), processing: t("being prepared"),
  ready_for_review: t("waiting for review"), approved: t("approved"), rejected: t("not approved"),
  invalid: t("can't be used"), failed: t("failed"), withdrawn: t("withdrawn"), none: t("none"),
  ready: t("ready"), draft: t("draft"), rendering: t("rendering"), rendered: t("rendered"),
  published: t("published"), unpublished: t("unpublished"), stale: t("out of date"),
};

export function label(value) {
  return LABELS[value] || value;
}
