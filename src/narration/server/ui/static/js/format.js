// Formatting times, durations, counts and operations for people.

const numbers = new Intl.NumberFormat("en");

export const count = (n) => numbers.format(n);

export const plural = (n, word) => `${count(n)} ${word}${n === 1 ? "" : "s"}`;

/** `14:03:07.123` in local time. */
export function clock(ts) {
  const d = new Date(ts * 1000);
  const two = (n) => String(n).padStart(2, "0");
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${ms}`;
}

/** `2026-01-05 14:03:07` in local time. */
export function dateTime(ts) {
  const d = new Date(ts * 1000);
  const two = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`
  );
}

/** `0.4 s`, `12 s`, `3 min 5 s`, `2 h 4 min`. */
export function duration(seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** `just now`, `12 s ago`, `3 min ago`, ... against the clock `now` (seconds). */
export function age(ts, now = Date.now() / 1000) {
  const seconds = Math.max(0, now - ts);
  if (seconds < 2) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** The operation's name (the discriminator of the submitted body). */
export const operationName = (op) => (op && typeof op === "object" ? op.operation : null) || "?";

/** The operation's other fields, short: `hive_id=gpu model=tinyllama`. */
export function operationArgs(op, limit = 80) {
  if (!op || typeof op !== "object") return "";
  const parts = [];
  for (const [key, value] of Object.entries(op)) {
    if (key === "operation" || value === null || value === undefined) continue;
    parts.push(`${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  }
  const text = parts.join(" ");
  return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
}

/** `job-1a2b3c4d…` */
export const shortId = (jobId) => (jobId && jobId.length > 13 ? jobId.slice(0, 12) + "…" : jobId);

/** A stable colour slot (0-7) for a name, so an actor keeps its colour everywhere. */
export function hue(name) {
  const known = { queen: 0, hive: 1, worker: 2 };
  if (name in known) return known[name];
  let hash = 0;
  for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) >>> 0;
  return 3 + (hash % 5);
}
