// One job: its events live, filters, the terminal as a banner, gaps as rows.

import { ApiError, cancelJob, FINAL_STATES, getJob } from "../api.js";
import { notice, stateBadge, statusBar, terminalBanner, terminalOfState } from "../common.js";
import { detailsIn } from "../details.js";
import { h, fill } from "../dom.js";
import { EventList } from "../eventlist.js";
import { age, dateTime, duration, operationArgs, operationName } from "../format.js";
import { JobStream } from "../stream.js";
import { filterBar } from "../toolbar.js";

export function jobPage(view, jobId, setCrumbs) {
  let stream = null;
  let ticker = 0;
  let gone = false;
  setCrumbs([["#/", "Jobs"], [null, jobId]]);
  notice(view, "Loading…", `Reading ${jobId}.`, { back: false });

  getJob(jobId).then(
    (summary) => {
      if (gone) return;
      const shown = show(view, summary);
      stream = shown.stream;
      ticker = shown.ticker;
    },
    (err) => {
      if (!gone) failed(view, jobId, err);
    },
  );

  return {
    unmount() {
      gone = true;
      stream?.close();
      clearInterval(ticker);
    },
  };
}

/** The page of a job that exists: its header, banner slot, filters, events and status. */
function show(view, summary) {
  const head = header(summary);
  let banner = h("div", { class: "banner-slot" });
  const listEl = h("div", { class: "log", tabindex: "0", "aria-label": "events" });
  const side = h("aside", { class: "side", hidden: true });
  const status = statusBar();
  const page = h(
    "section",
    { class: "page job-page", dataset: { jobId: summary.job_id } },
    head.el,
    banner,
  );
  fill(view, page);

  const list = new EventList(listEl, {
    onSelect: detailsIn(side, () => list),
    onChange: () => {
      bar.refresh();
      status.counts(list);
    },
  });
  const bar = filterBar(list);
  page.append(bar.el, h("div", { class: "log-area" }, listEl, side), status.el);
  window.narrationViewer.list = list;

  let ended = false;
  const setBanner = (el) => {
    ended = true;
    banner.replaceWith(el);
    banner = el;
    head.finished();
  };
  const end = (name, data) => {
    if (ended) return;
    setBanner(terminalBanner(name, data));
    getJob(summary.job_id).then(head.update, () => {});
  };
  const vanished = () =>
    setBanner(
      h(
        "div",
        { class: "banner banner-gone", role: "status" },
        h("span", { class: "banner-icon", "aria-hidden": "true" }, "?"),
        h("strong", {}, "Gone"),
        h(
          "span",
          { class: "banner-text" },
          "This job is no longer on the server (it expired, or the server restarted without it).",
        ),
      ),
    );

  const stream = new JobStream(summary, {
    onEvent: (event) => list.addEvent(event),
    onGap: (gap) => list.addGap(gap, summary.job_id, null),
    onTerminal: (name, data) => end(name, data),
    onStatus: (s) => status.connection(s),
    onLost: async () => {
      // The browser gave up on the stream: ask the API what became of the job.
      try {
        const latest = await getJob(summary.job_id);
        const name = terminalOfState(latest.state);
        if (!name) return stream.resume();
        stream.close();
        end(name, latest);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) return stream.resume();
        stream.close();
        if (!ended) vanished();
      }
    },
  }).start();
  return { stream, ticker: head.ticker };
}

/** Title, state, ids, timing and the cancel button; `update(summary)` refreshes them. */
function header(summary) {
  let current = summary;
  const badge = h("span", { class: "badge-slot" }, stateBadge(summary.state));
  const cancel = h(
    "button",
    { type: "button", class: "btn btn-danger", hidden: FINAL_STATES.has(summary.state) },
    "Cancel job",
  );
  const created = h("span", { class: "created" });
  const timing = h("span", { class: "timing" });
  const correlation = `#/correlations/${encodeURIComponent(summary.correlation_id)}`;
  const parent = summary.parent_job_id;
  const args = operationArgs(summary.operation, 200);
  const el = h(
    "div",
    { class: "page-head" },
    h(
      "div",
      { class: "title-row" },
      h("h1", {}, operationName(summary.operation)),
      badge,
      h("span", { class: "grow" }),
      cancel,
    ),
    h(
      "div",
      { class: "meta" },
      h("code", { class: "job-id" }, summary.job_id),
      h("span", {}, "correlation ", h("a", { href: correlation }, summary.correlation_id)),
      parent ? h("span", {}, "parent ", h("a", { href: `#/jobs/${parent}` }, parent)) : null,
      h("span", { title: dateTime(summary.created_at) }, "created ", created),
      timing,
    ),
    args ? h("div", { class: "args" }, args) : null,
  );

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await cancelJob(summary.job_id); // the stream brings the `cancelled` terminal
    } catch (err) {
      cancel.disabled = false;
      if (err instanceof ApiError && err.status === 409) cancel.hidden = true;
    }
  });

  const tick = () => {
    const start = current.started_at || current.created_at;
    const end = current.finished_at || Date.now() / 1000;
    timing.textContent = (current.finished_at ? "took " : "running for ") + duration(end - start);
    created.textContent = age(current.created_at);
  };
  tick();
  return {
    el,
    ticker: setInterval(tick, 1000),
    finished: () => (cancel.hidden = true),
    update: (latest) => {
      current = latest;
      fill(badge, stateBadge(latest.state));
      tick();
    },
  };
}

function failed(view, jobId, err) {
  if (err instanceof ApiError && err.status === 404) {
    notice(
      view,
      "Job not found",
      `No job ${jobId} on this server: the id is unknown, or the job finished longer ago ` +
        "than the server keeps jobs (its retention) and has expired.",
      { kind: "warn" },
    );
  } else {
    notice(view, "Could not load the job", err.message, { kind: "error" });
  }
}
