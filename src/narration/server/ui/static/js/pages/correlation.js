// Every job of one correlation id in one merged, time-ordered timeline (a trace view for
// narration): a keeper request through queen, hive and worker, read from this server.

import { FINAL_STATES, listJobs } from "../api.js";
import { eventDetails } from "../details.js";
import { h, fill } from "../dom.js";
import { count, duration, operationArgs, operationName, shortId } from "../format.js";
import { EventList } from "../eventlist.js";
import { JobStream } from "../stream.js";
import { filterBar } from "../toolbar.js";
import { notice, stateBadge, statusBar, terminalOfState } from "../common.js";

const POLL_MS = 2000;
const MAX_STREAMS = 4; // browsers allow ~6 connections per server; leave some for the API
const ORIGIN = /^[^:]*:(job-[^#]+)#(\d+)$/;

export function correlationPage(view, correlationId, setCrumbs) {
  setCrumbs([["#/", "Jobs"], [null, `correlation ${correlationId}`]]);
  notice(view, "Loading…", `Reading the jobs of ${correlationId}.`, { back: false });
  const jobs = new Map(); // job_id -> {summary, index, stream, state, lastTs}
  const waiting = [];
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
    if (!ui) {
      if (!found.length) {
        notice(
          view,
          "No jobs for this correlation id",
          `This server has no job with correlation id ${correlationId}: it is unknown here, or its jobs have expired.`,
          { kind: "warn" },
        );
        return;
      }
      ui = build();
    }
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
    const job = { summary, index: jobs.size, stream: null, state: summary.state, lastTs: summary.created_at, terminal: null };
    jobs.set(summary.job_id, job);
    // Events relayed from this job by another job on this page are shown once, from here.
    ui.list.removeWhere((row) => row.kind === "event" && relayedFrom(row.event) === summary.job_id);
    waiting.push(job);
    pump();
  }

  function pump() {
    while (open < MAX_STREAMS && waiting.length && !gone) {
      const job = waiting.shift();
      open += 1;
      job.stream = new JobStream(job.summary, {
        onEvent: (event) => {
          job.lastTs = event.ts;
          const from = relayedFrom(event);
          if (from && jobs.has(from)) return;
          ui.list.addEvent(event);
        },
        onGap: (gap) => ui.list.addGap(gap, job.summary.job_id, job.lastTs),
        onTerminal: (name, data) => {
          job.terminal = name;
          job.state = data.state || job.state;
          ui.list.addTerminal(name, data, job.summary.job_id, job.summary.finished_at || job.lastTs);
          done();
        },
        onStatus: () => ui.drawStatus(),
        onLost: () => {
          const name = terminalOfState(job.state);
          if (FINAL_STATES.has(job.state) && name) {
            job.terminal = name;
            job.stream.close();
            done();
          } else {
            job.stream.resume();
          }
        },
      }).start();
    }
    function done() {
      open -= 1;
      ui.drawJobs();
      pump();
    }
  }

  function label(jobId) {
    const job = jobs.get(jobId);
    if (!job) return { text: shortId(jobId), hue: 7 };
    return { text: `${operationName(job.summary.operation)} ${jobId.slice(4, 8)}`, hue: job.index % 8 };
  }

  function build() {
    const title = h("h1", {}, "Correlation ", h("code", {}, correlationId));
    const meta = h("div", { class: "meta" });
    const strip = h("ol", { class: "job-strip", "aria-label": "jobs" });
    const area = h("div", { class: "log-area" });
    const listEl = h("div", { class: "log", tabindex: "0", "aria-label": "timeline" });
    const side = h("aside", { class: "side", hidden: true });
    area.append(listEl, side);
    const status = statusBar();
    const page = h(
      "section",
      { class: "page correlation-page" },
      h("div", { class: "page-head" }, h("div", { class: "title-row" }, title), meta),
      strip,
    );
    fill(view, page);
    const list = new EventList(listEl, {
      sorted: true,
      jobLabel: label,
      onSelect: (row) => {
        side.hidden = !row;
        if (row) fill(side, eventDetails(row.event, () => { list.selected = null; side.hidden = true; list.schedule(); }));
      },
      onChange: () => {
        bar.refresh();
        status.counts(list);
        drawMeta();
      },
    });
    const bar = filterBar(list, {
      jobs: () => [...jobs.values()].map((job) => [job.summary.job_id, label(job.summary.job_id).text]),
    });
    page.append(bar.el, area, status.el);
    window.narrationViewer.list = list;

    function drawMeta() {
      const rows = list.rows;
      const span = rows.length > 1 ? duration(rows[rows.length - 1].ts - rows[0].ts) : "—";
      meta.textContent = `${count(jobs.size)} job${jobs.size === 1 ? "" : "s"} · ${count(list.events)} events · actors ${[...list.actors].sort().join(", ") || "—"} · spans ${span}`;
    }

    function drawJobs() {
      const children = new Map();
      for (const job of jobs.values()) {
        const parent = job.summary.parent_job_id;
        const key = parent && jobs.has(parent) ? parent : "";
        if (!children.has(key)) children.set(key, []);
        children.get(key).push(job);
      }
      const items = [];
      const walk = (key, depth) => {
        for (const job of children.get(key) || []) {
          const s = job.summary;
          const lab = label(s.job_id);
          items.push(
            h(
              "li",
              { class: "strip-job", style: { "--depth": String(depth) }, dataset: { jobId: s.job_id } },
              h("span", { class: `swatch hue-${lab.hue}`, "aria-hidden": "true" }),
              stateBadge(job.state),
              h("a", { href: `#/jobs/${s.job_id}`, title: s.job_id }, operationName(s.operation)),
              h("span", { class: "op-args" }, operationArgs(s.operation, 60)),
              h("span", { class: "muted" }, `${count(s.events)} events`),
            ),
          );
          walk(s.job_id, depth + 1);
        }
      };
      walk("", 0);
      fill(strip, items);
      drawStatus();
    }

    function drawStatus() {
      const streams = [...jobs.values()].map((job) => job.stream);
      const live = streams.some((s) => s && !s.finished) || waiting.length;
      status.connection(live ? "live" : "closed");
    }

    return { list, drawJobs, drawStatus };
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

function relayedFrom(event) {
  const match = event.origin && ORIGIN.exec(event.origin);
  return match ? match[1] : null;
}
