// Pieces shared by the pages: state badges, notices, banners, the status bar.

import { h, fill } from "./dom.js";
import { count } from "./format.js";

export function stateBadge(state) {
  return h("span", { class: `badge state-${state}` }, state);
}

/** A full-page message (unknown job, server unreachable, ...). */
export function notice(view, title, text, { kind = "info", back = true } = {}) {
  fill(
    view,
    h(
      "section",
      { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" },
      h("h2", {}, title),
      h("p", {}, text),
      back ? h("p", {}, h("a", { href: "#/" }, "← All jobs")) : null,
    ),
  );
}

const TERMINAL_OF_STATE = { completed: "done", failed: "error", cancelled: "cancelled" };
export const terminalOfState = (state) => TERMINAL_OF_STATE[state] || null;

/** The banner for a job's terminal: done, error with its message, or cancelled. */
export function terminalBanner(name, data, extra = "") {
  const error = data && data.error;
  const [icon, title, text] =
    name === "done"
      ? ["✔", "Done", "The job completed."]
      : name === "cancelled"
        ? ["■", "Cancelled", error || "The job was cancelled."]
        : ["✖", "Error", error || "The job failed."];
  return h(
    "div",
    { class: `banner banner-${name}`, role: "status", dataset: { terminal: name } },
    h("span", { class: "banner-icon", "aria-hidden": "true" }, icon),
    h("strong", {}, title),
    h("span", { class: "banner-text" }, text),
    extra ? h("span", { class: "banner-extra" }, extra) : null,
  );
}

const STATUS_TEXT = {
  loading: ["loading", "Loading…"],
  connecting: ["connecting", "Connecting…"],
  live: ["live", "Live"],
  reconnecting: ["reconnecting", "Reconnecting…"],
  closed: ["closed", "Ended"],
};

/** The line under an event list: counts and the stream's connection state. */
export function statusBar() {
  const counts = h("span", { class: "counts" });
  const state = h("span", { class: "conn" });
  const el = h("footer", { class: "statusbar" }, counts, state);
  return {
    el,
    counts(list) {
      const shown = list.view.length;
      const events = list.events;
      let text = `${count(events)} event${events === 1 ? "" : "s"}`;
      if (shown !== list.rows.length) text += ` · ${count(shown)} shown`;
      counts.textContent = text;
      el.dataset.events = String(events);
    },
    connection(status) {
      const [key, label] = STATUS_TEXT[status] || [status, status];
      state.className = `conn conn-${key}`;
      state.textContent = label;
      el.dataset.connection = key;
    },
  };
}
