// The detail panel of one event: every key of its wire JSON, fields included.

import { h } from "./dom.js";
import { dateTime } from "./format.js";

const ORDER = [
  ["id", "Event id"],
  ["level", "Level"],
  ["actor", "Actor"],
  ["action", "Action"],
  ["target", "Target"],
  ["human", "Text"],
  ["cute", "Cute"],
  ["story", "Story"],
  ["job_id", "Job"],
  ["correlation_id", "Correlation"],
  ["trace_id", "Trace id"],
  ["span_id", "Span id"],
  ["origin", "Origin"],
  ["fn_name", "Function"],
];

export function eventDetails(event, onClose) {
  const items = [];
  const ms = String(Math.round((event.ts % 1) * 1e6)).padStart(6, "0");
  items.push(["Time", `${dateTime(event.ts)}.${ms}`]);
  for (const [key, label] of ORDER) {
    if (event[key] !== undefined && event[key] !== null && event[key] !== "") {
      items.push([label, String(event[key])]);
    }
  }
  for (const key of Object.keys(event)) {
    if (!["ts", "fields", ...ORDER.map(([k]) => k)].includes(key)) {
      items.push([key, JSON.stringify(event[key])]);
    }
  }
  return h(
    "section",
    { class: "details", "aria-label": "event details" },
    h(
      "header",
      {},
      h("h3", {}, `Event #${event.id}`),
      h("button", { type: "button", class: "close", onclick: onClose, title: "close" }, "×"),
    ),
    h("dl", {}, items.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)])),
    h("h4", {}, "Fields"),
    event.fields && Object.keys(event.fields).length
      ? h("pre", { class: "fields-json" }, JSON.stringify(event.fields, null, 2))
      : h("p", { class: "muted" }, "none"),
  );
}

/** An `onSelect` for an EventList: shows the selected event in `side`, hides it when none. */
export function detailsIn(side, getList) {
  return (row) => {
    side.hidden = !row;
    if (!row) return;
    const close = () => {
      const list = getList();
      list.selected = null;
      side.hidden = true;
      list.schedule();
    };
    side.replaceChildren(eventDetails(row.event, close));
  };
}
