// The server's jobs, newest first, kept live by polling the list (paused while hidden).

import { listJobs } from "../api.js";
import { stateBadge } from "../common.js";
import { h, fill, options } from "../dom.js";
import {
  age,
  count,
  dateTime,
  duration,
  operationArgs,
  operationName,
  shortId,
} from "../format.js";

const POLL_MS = 1000;
const COLUMNS = ["State", "Operation", "Job", "Correlation", "Age", "Duration", "Events"];
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
  const rows = new Map(); // job id -> <tr>, reused across polls
  let jobs = [];
  let timer = 0;
  let gone = false;

  const state = h("select", { name: "state", "aria-label": "state", class: "f-state" });
  options(state, STATES, "");
  state.addEventListener("change", () => {
    filter.state = state.value;
    poll();
  });
  const operation = h("select", {
    name: "operation",
    "aria-label": "operation",
    class: "f-operation",
  });
  operation.addEventListener("change", () => {
    filter.operation = operation.value;
    draw();
  });
  const summary = h("span", { class: "muted" });
  const problem = h("div", { class: "inline-error", role: "alert", hidden: true });
  const body = h("tbody");
  const empty = h("div", { class: "empty", hidden: true });
  const head = h("tr", {}, COLUMNS.map((title) => h("th", { scope: "col" }, title)));
  fill(
    view,
    h(
      "section",
      { class: "page jobs-page" },
      h(
        "div",
        { class: "page-head" },
        h(
          "div",
          { class: "title-row" },
          h("h1", {}, "Jobs"),
          h("span", { class: "grow" }),
          summary,
        ),
      ),
      h("div", { class: "toolbar", role: "toolbar", "aria-label": "filters" }, state, operation),
      problem,
      h(
        "div",
        { class: "table-wrap" },
        h("table", { class: "jobs" }, h("thead", {}, head), body),
        empty,
      ),
    ),
  );

  function draw() {
    const names = [...operations].sort().map((name) => [name, name]);
    options(operation, [["", "All operations"], ...names], filter.operation);
    const shown = jobs.filter(
      (job) => !filter.operation || operationName(job.operation) === filter.operation,
    );
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
    const running = jobs.filter((job) => job.state === "running" || job.state === "queued");
    summary.textContent = `${count(jobs.length)} job${jobs.length === 1 ? "" : "s"} · `
      + `${count(running.length)} running`;
    empty.hidden = shown.length > 0;
    if (!shown.length) fill(empty, jobs.length || filter.state ? noMatch() : noJobs());
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
  const wake = () => {
    if (!document.hidden) poll();
  };
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

function newRow(job) {
  const open = (e) => {
    if (!e.target.closest("a")) location.hash = `#/jobs/${job.job_id}`;
  };
  const correlation = `#/correlations/${encodeURIComponent(job.correlation_id)}`;
  const forwarded = job.parent_job_id
    ? h("span", { class: "child-of", title: `forwarded by ${job.parent_job_id}` }, "↳ forwarded")
    : null;
  return h(
    "tr",
    { dataset: { jobId: job.job_id }, onclick: open },
    h("td", { class: "c-state" }),
    h(
      "td",
      { class: "c-op" },
      h("span", { class: "op-name" }, operationName(job.operation)),
      h("span", { class: "op-args" }, operationArgs(job.operation)),
    ),
    h(
      "td",
      { class: "c-job" },
      h(
        "a",
        { href: `#/jobs/${job.job_id}`, class: "job-link", title: job.job_id },
        shortId(job.job_id),
      ),
      forwarded,
    ),
    h(
      "td",
      { class: "c-corr" },
      h(
        "a",
        { href: correlation, class: "corr-link", title: "every job of this correlation id" },
        job.correlation_id,
      ),
    ),
    h("td", { class: "c-age", title: dateTime(job.created_at) }),
    h("td", { class: "c-duration" }),
    h("td", { class: "c-events num" }),
  );
}

function update(row, job, now) {
  if (row.dataset.state !== job.state) {
    row.dataset.state = job.state;
    fill(row.querySelector(".c-state"), stateBadge(job.state));
  }
  const start = job.started_at || job.created_at;
  let took = "";
  if (job.finished_at) took = duration(job.finished_at - start);
  else if (job.state === "running") took = duration(now - start) + "…";
  row.querySelector(".c-age").textContent = age(job.created_at, now);
  row.querySelector(".c-duration").textContent = took;
  row.querySelector(".c-events").textContent = count(job.events);
}

const noMatch = () => h("p", {}, "No jobs match these filters.");

function noJobs() {
  const url = new URL("../v1/jobs", location.href);
  return [
    h("p", {}, h("strong", {}, "No jobs yet.")),
    h("p", {}, "Submit one and it appears here, live:"),
    h(
      "pre",
      {},
      `curl -X POST ${url.origin}${url.pathname} \\\n` +
        `  -H 'Content-Type: application/json' -d '{"operation": "status"}'`,
    ),
  ];
}
