// Every job of one correlation id in one merged, time-ordered timeline (a trace view for
// narration): a keeper request through queen, hive and worker, read from this server.

import { FINAL_STATES, listJobs } from "../api.js";
import { notice, stateBadge, statusBar, terminalOfState } from "../common.js";
import { detailsIn } from "../details.js";
import { h, fill } from "../dom.js";
import { EventList } from "../eventlist.js";
import { count, duration, operationArgs, operationName, shortId } from "../format.js";
import { JobStream } from "../stream.js";
import { filterBar } from "../toolbar.js";

const POLL_MS = 2000;
const MAX_STREAMS = 4; // browsers allow ~6 connections per server; leave some for the API
const ORIGIN = /^[^:]*:(job-[^#]+)#(\d+)$/; // `hive:<job id>#<event id>`, set by a relay

export function correlationPage(view, correlationId, setCrumbs) {
  setCrumbs([["#/", "Jobs"], [null, `correlation ${correlationId}`]]);
  notice(view, "Loading…", `Reading the jobs of ${correlationId}.`, { back: false });
  const jobs = new Map(); // job id -> {summary, index, stream, state, lastTs, terminal}
  const waiting = []; // jobs whose stream waits for a free connection
  let open = 0;
  let timer = 0;
  let gone = false;
  let ui = null;

  async function poll() {
    clearTimeout(timer);
    if (gone) return;
    let found;
    try {
      found = await listJobs({ correlationId, limit: 1000 });
    } catch (err) {
      if (!ui) notice(view, "Could not load the correlation", err.message, { kind: "error" });
      timer = setTimeout(poll, POLL_MS);
      return;
    }
    if (gone) return;
    if (!ui && !found.length) {
      notice(
        view,
        "No jobs for this correlation id",
        `This server has no job with correlation id ${correlationId}: ` +
          "it is unknown here, or its jobs have expired.",
        { kind: "warn" },
      );
      return;
    }
    ui ??= timeline(view, correlationId, jobs, waiting);
    for (const summary of [...found].reverse()) addJob(summary); // oldest first
    for (const summary of found) {
      const job = jobs.get(summary.job_id);
      job.summary = summary;
      if (!job.terminal) job.state = summary.state;
    }
    ui.drawJobs();
    const live = [...jobs.values()].some((job) => !FINAL_STATES.has(job.state));
    timer = setTimeout(poll, live ? POLL_MS : POLL_MS * 5);
  }

  function addJob(summary) {
    if (jobs.has(summary.job_id)) return;
    const job = {
      summary,
      index: jobs.size,
      stream: null,
      state: summary.state,
      lastTs: summary.created_at,
      terminal: null,
    };
    jobs.set(summary.job_id, job);
    // Events another job here relayed from this one are shown once: from this job.
    ui.list.removeWhere((row) => row.kind === "event" && relayedFrom(row.event) === summary.job_id);
    waiting.push(job);
    pump();
  }

  function pump() {
    while (open < MAX_STREAMS && waiting.length && !gone) {
      open += 1;
      follow(waiting.shift());
    }
  }

  function follow(job) {
    const jobId = job.summary.job_id;
    const ended = () => {
      open -= 1;
      ui.drawJobs();
      pump();
    };
    job.stream = new JobStream(job.summary, {
      onEvent: (event) => {
        job.lastTs = event.ts;
        const from = relayedFrom(event);
        if (!(from && jobs.has(from))) ui.list.addEvent(event);
      },
      onGap: (gap) => ui.list.addGap(gap, jobId, job.lastTs),
      onTerminal: (name, data) => {
        job.terminal = name;
        job.state = data.state || job.state;
        ui.list.addTerminal(name, data, jobId, job.summary.finished_at || job.lastTs);
        ended();
      },
      onStatus: () => ui.drawStatus(),
      onLost: () => {
        if (!terminalOfState(job.state)) return job.stream.resume();
        job.terminal = terminalOfState(job.state);
        job.stream.close();
        ended();
      },
    }).start();
  }

  poll();
  return {
    unmount() {
      gone = true;
      clearTimeout(timer);
      for (const job of jobs.values()) job.stream?.close();
    },
  };
}

/** The page around the merged list: title, facts, the jobs as a tree, filters, status. */
function timeline(view, correlationId, jobs, waiting) {
  const meta = h("div", { class: "meta" });
  const strip = h("ol", { class: "job-strip", "aria-label": "jobs" });
  const listEl = h("div", { class: "log", tabindex: "0", "aria-label": "timeline" });
  const side = h("aside", { class: "side", hidden: true });
  const status = statusBar();
  const title = h("h1", {}, "Correlation ", h("code", {}, correlationId));
  const page = h(
    "section",
    { class: "page correlation-page" },
    h("div", { class: "page-head" }, h("div", { class: "title-row" }, title), meta),
    strip,
  );
  fill(view, page);

  const label = (jobId) => {
    const job = jobs.get(jobId);
    if (!job) return { text: shortId(jobId), hue: 7 };
    const name = operationName(job.summary.operation);
    return { text: `${name} ${jobId.slice(4, 8)}`, hue: (job.index + 3) % 8 }; // past actor hues
  };
  const list = new EventList(listEl, {
    sorted: true,
    jobLabel: label,
    onSelect: detailsIn(side, () => list),
    onChange: () => {
      bar.refresh();
      status.counts(list);
      drawMeta();
    },
  });
  const bar = filterBar(list, {
    jobs: () => [...jobs.keys()].map((jobId) => [jobId, label(jobId).text]),
  });
  page.append(bar.el, h("div", { class: "log-area" }, listEl, side), status.el);
  window.narrationViewer.list = list;

  function drawMeta() {
    const rows = list.rows;
    const span = rows.length > 1 ? duration(rows[rows.length - 1].ts - rows[0].ts) : "—";
    const actors = [...list.actors].sort().join(", ") || "—";
    meta.textContent =
      `${count(jobs.size)} job${jobs.size === 1 ? "" : "s"} · ${count(list.events)} events · ` +
      `actors ${actors} · spans ${span}`;
  }

  function drawJobs() {
    const children = new Map(); // parent job id ("" for none here) -> its jobs
    for (const job of jobs.values()) {
      const parent = job.summary.parent_job_id;
      const key = parent && jobs.has(parent) ? parent : "";
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(job);
    }
    const items = [];
    const walk = (key, depth) => {
      for (const job of children.get(key) || []) {
        items.push(stripItem(job, depth, label(job.summary.job_id)));
        walk(job.summary.job_id, depth + 1);
      }
    };
    walk("", 0);
    fill(strip, items);
    drawStatus();
  }

  function drawStatus() {
    const live = waiting.length || [...jobs.values()].some((j) => j.stream && !j.stream.finished);
    status.connection(live ? "live" : "closed");
  }

  return { list, drawJobs, drawStatus };
}

function stripItem(job, depth, label) {
  const s = job.summary;
  return h(
    "li",
    { class: "strip-job", style: { "--depth": String(depth) }, dataset: { jobId: s.job_id } },
    h("span", { class: `swatch hue-${label.hue}`, "aria-hidden": "true" }),
    stateBadge(job.state),
    h("a", { href: `#/jobs/${s.job_id}`, title: s.job_id }, operationName(s.operation)),
    h("span", { class: "op-args" }, operationArgs(s.operation, 60)),
    h("span", { class: "muted" }, `${count(s.events)} events`),
  );
}

function relayedFrom(event) {
  const match = event.origin && ORIGIN.exec(event.origin);
  return match ? match[1] : null;
}
