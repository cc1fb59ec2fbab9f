// The server's jobs, newest first, kept live by polling the list (paused while hidden).

import { listJobs } from "../api.js";
import { h, fill, options } from "../dom.js";
import { age, count, dateTime, duration, operationArgs, operationName, shortId } from "../format.js";
import { stateBadge } from "../common.js";

const POLL_MS = 1000;
const STATES = [
  ["", "All states"],
  ["queued", "Queued"],
  ["running", "Running"],
  ["completed", "Completed"],
  ["failed", "Failed"],
  ["cancelled", "Cancelled"],
];

export function jobsPage(view, setCrumbs) {
  setCrumbs([[null, "Jobs"]]);
  const filter = { state: "", operation: "" };
  const operations = new Set();
  let jobs = [];
  let timer = 0;
  let gone = false;

  const state = h("select", { name: "state", "aria-label": "state", class: "f-state" });
  options(state, STATES, "");
  state.addEventListener("change", () => {
    filter.state = state.value;
    poll();
  });
  const operation = h("select", { name: "operation", "aria-label": "operation", class: "f-operation" });
  operation.addEventListener("change", () => {
    filter.operation = operation.value;
    draw();
  });
  const summary = h("span", { class: "muted" });
  const problem = h("div", { class: "inline-error", role: "alert", hidden: true });
  const body = h("tbody");
  const empty = h("div", { class: "empty", hidden: true });
  const table = h(
    "table",
    { class: "jobs" },
    h(
      "thead",
      {},
      h("tr", {}, ["State", "Operation", "Job", "Correlation", "Age", "Duration", "Events"].map((t) => h("th", { scope: "col" }, t))),
    ),
    body,
  );
  fill(
    view,
    h(
      "section",
      { class: "page jobs-page" },
      h("div", { class: "page-head" }, h("div", { class: "title-row" }, h("h1", {}, "Jobs"), h("span", { class: "grow" }), summary)),
      h("div", { class: "toolbar", role: "toolbar", "aria-label": "filters" }, state, operation),
      problem,
      h("div", { class: "table-wrap" }, table, empty),
    ),
  );

  const rows = new Map();

  function draw() {
    options(operation, [["", "All operations"], ...[...operations].sort().map((o) => [o, o])], filter.operation);
    const shown = jobs.filter((job) => !filter.operation || operationName(job.operation) === filter.operation);
    const now = Date.now() / 1000;
    const keep = new Set();
    let previous = null;
    for (const job of shown) {
      keep.add(job.job_id);
      let row = rows.get(job.job_id);
      if (!row) {
        row = newRow(job);
        rows.set(job.job_id, row);
      }
      update(row, job, now);
      const next = previous ? previous.nextSibling : body.firstChild;
      if (next !== row) body.insertBefore(row, next);
      previous = row;
    }
    for (const [id, row] of rows) {
      if (!keep.has(id)) {
        row.remove();
        rows.delete(id);
      }
    }
    const running = jobs.filter((job) => job.state === "running" || job.state === "queued").length;
    summary.textContent = `${count(jobs.length)} job${jobs.length === 1 ? "" : "s"} · ${count(running)} running`;
    empty.hidden = shown.length > 0;
    if (!shown.length) {
      fill(
        empty,
        jobs.length || filter.state
          ? h("p", {}, "No jobs match these filters.")
          : [h("p", {}, h("strong", {}, "No jobs yet.")), h("p", {}, "Submit one and it appears here, live:"), h("pre", {}, `curl -X POST ${location.origin}${new URL("../v1/jobs", location.href).pathname} \\\n  -H 'Content-Type: application/json' -d '{"operation": "status"}'`)],
      );
    }
  }

  function newRow(job) {
    const link = h("a", { href: `#/jobs/${job.job_id}`, class: "job-link", title: job.job_id }, shortId(job.job_id));
    const corr = h("a", { href: `#/correlations/${encodeURIComponent(job.correlation_id)}`, class: "corr-link", title: "every job of this correlation id" }, job.correlation_id);
    const row = h(
      "tr",
      { dataset: { jobId: job.job_id }, onclick: (e) => { if (!e.target.closest("a")) location.hash = `#/jobs/${job.job_id}`; } },
      h("td", { class: "c-state" }),
      h("td", { class: "c-op" }, h("span", { class: "op-name" }, operationName(job.operation)), h("span", { class: "op-args" }, operationArgs(job.operation))),
      h("td", { class: "c-job" }, link, job.parent_job_id ? h("span", { class: "child-of", title: `forwarded by ${job.parent_job_id}` }, "↳ forwarded") : null),
      h("td", { class: "c-corr" }, corr),
      h("td", { class: "c-age", title: dateTime(job.created_at) }),
      h("td", { class: "c-duration" }),
      h("td", { class: "c-events num" }),
    );
    return row;
  }

  function update(row, job, now) {
    if (row.dataset.state !== job.state) {
      row.dataset.state = job.state;
      fill(row.querySelector(".c-state"), stateBadge(job.state));
    }
    row.querySelector(".c-age").textContent = age(job.created_at, now);
    const start = job.started_at || job.created_at;
    row.querySelector(".c-duration").textContent = job.finished_at
      ? duration(job.finished_at - start)
      : job.state === "running" ? duration(now - start) + "…" : "";
    row.querySelector(".c-events").textContent = count(job.events);
  }

  async function poll() {
    clearTimeout(timer);
    if (gone) return;
    if (!document.hidden) {
      try {
        jobs = await listJobs({ state: filter.state });
        for (const job of jobs) operations.add(operationName(job.operation));
        problem.hidden = true;
      } catch (err) {
        problem.hidden = false;
        problem.textContent = `Cannot read the jobs: ${err.message}. Retrying…`;
      }
      if (gone) return;
      draw();
    }
    timer = setTimeout(poll, POLL_MS);
  }
  const wake = () => { if (!document.hidden) poll(); };
  document.addEventListener("visibilitychange", wake);
  poll();

  return {
    unmount() {
      gone = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", wake);
    },
  };
}
