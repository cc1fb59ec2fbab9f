// The filter bar above an event list: level, actor, job, text, text mode and fields.

import { h, options } from "./dom.js";

const LEVEL_CHOICES = [
  ["trace", "All levels"],
  ["debug", "Debug and up"],
  ["info", "Info and up"],
  ["warn", "Warnings and up"],
  ["error", "Errors only"],
];

const MODES = [
  ["human", "Plain"],
  ["cute", "Cute"],
  ["story", "Story"],
];

/** A toolbar driving `list`; `jobs()` (optional) lists [jobId, label] for a job filter. */
export function filterBar(list, { jobs = null } = {}) {
  const level = h("select", { name: "level", "aria-label": "level", class: "f-level" });
  options(level, LEVEL_CHOICES, "trace");
  level.addEventListener("change", () => list.setFilter({ minLevel: level.value }));

  const actor = h("select", { name: "actor", "aria-label": "actor", class: "f-actor" });
  actor.addEventListener("change", () => list.setFilter({ actor: actor.value }));

  const job = jobs ? h("select", { name: "job", "aria-label": "job", class: "f-job" }) : null;
  job?.addEventListener("change", () => list.setFilter({ job: job.value }));

  const text = h("input", {
    type: "search",
    name: "text",
    class: "f-text",
    placeholder: "Filter text…",
    "aria-label": "filter text",
  });
  text.addEventListener("input", () => list.setFilter({ text: text.value.trim().toLowerCase() }));

  const mode = h("select", { name: "mode", "aria-label": "text mode", class: "f-mode" });
  options(mode, MODES, "human");
  mode.addEventListener("change", () => {
    list.setMode(mode.value);
    if (list.filter.text) list.setFilter({});
  });

  const fields = h("input", { type: "checkbox", name: "fields", class: "f-fields" });
  fields.addEventListener("change", () => list.setShowFields(fields.checked));

  const el = h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "filters" },
    level,
    actor,
    job,
    text,
    h("span", { class: "spacer-x" }),
    h("label", { class: "inline" }, "Text ", mode),
    h("label", { class: "inline" }, fields, " Fields"),
  );

  function refresh() {
    const actors = [...list.actors].sort();
    options(actor, [["", "All actors"], ...actors.map((a) => [a, a])], list.filter.actor);
    if (job) options(job, [["", "All jobs"], ...jobs()], list.filter.job);
  }
  refresh();
  return { el, refresh };
}
