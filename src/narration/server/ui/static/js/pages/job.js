// One job: its events live, filters, the terminal as a banner, gaps as rows.

import { ApiError, cancelJob, FINAL_STATES, getJob } from "../api.js";
import { eventDetails } from "../details.js";
import { h, fill } from "../dom.js";
import { age, dateTime, duration, operationArgs, operationName } from "../format.js";
import { EventList } from "../eventlist.js";
import { JobStream } from "../stream.js";
import { filterBar } from "../toolbar.js";
import { notice, stateBadge, statusBar, terminalBanner, terminalOfState } from "../common.js";

export function jobPage(view, jobId, setCrumbs) {
  let stream = null;
  let ticker = 0;
  let gone = false;
  setCrumbs([["#/", "Jobs"], [null, jobId]]);
  notice(view, "Loading…", `Reading ${jobId}.`, { back: false });

  getJob(jobId).then(
    (summary) => {
      if (!gone) show(summary);
    },
    (err) => {
      if (!gone) failed(view, jobId, err);
    },
  );

  function show(summary) {
    const title = h("h1", {}, operationName(summary.operation));
    const badge = h("span", { class: "badge-slot" }, stateBadge(summary.state));
    const cancel = h("button", { type: "button", class: "btn btn-danger", hidden: FINAL_STATES.has(summary.state) }, "Cancel job");
    const timing = h("span", { class: "timing" });
    const banner = h("div", { class: "banner-slot" });
    const area = h("div", { class: "log-area" });
    const listEl = h("div", { class: "log", tabindex: "0", "aria-label": "events" });
    const side = h("aside", { class: "side", hidden: true });
    area.append(listEl, side);
    const status = statusBar();
    const meta = h(
      "div",
      { class: "meta" },
      h("code", { class: "job-id" }, summary.job_id),
      h("span", {}, "correlation ", h("a", { href: `#/correlations/${encodeURIComponent(summary.correlation_id)}` }, summary.correlation_id)),
      summary.parent_job_id
        ? h("span", {}, "parent ", h("a", { href: `#/jobs/${summary.parent_job_id}` }, summary.parent_job_id))
        : null,
      h("span", { title: dateTime(summary.created_at) }, "created ", h("span", { class: "created" }, age(summary.created_at))),
      timing,
    );
    const args = operationArgs(summary.operation, 200);
    const page = h(
      "section",
      { class: "page job-page", dataset: { jobId: summary.job_id } },
      h("div", { class: "page-head" }, h("div", { class: "title-row" }, title, badge, h("span", { class: "grow" }), cancel), meta, args ? h("div", { class: "args" }, args) : null),
      banner,
    );
    fill(view, page);

    const list = new EventList(listEl, {
      onSelect: (row) => {
        side.hidden = !row;
        if (row) fill(side, eventDetails(row.event, () => { list.selected = null; side.hidden = true; list.schedule(); }));
      },
      onChange: () => {
        bar.refresh();
        status.counts(list);
      },
    });
    const bar = filterBar(list);
    page.append(bar.el, area, status.el);
    window.narrationViewer.list = list;

    let current = summary;
    let ended = false;
    const tick = () => {
      const end = current.finished_at || Date.now() / 1000;
      const start = current.started_at || current.created_at;
      timing.textContent = (current.finished_at ? "took " : "running for ") + duration(end - start);
      page.querySelector(".created").textContent = age(current.created_at);
    };
    tick();
    ticker = setInterval(tick, 1000);

    const end = (name, data, note = "") => {
      if (ended) return;
      ended = true;
      banner.replaceWith(terminalBanner(name, data, note));
      cancel.hidden = true;
      getJob(summary.job_id).then((latest) => {
        current = latest;
        fill(badge, stateBadge(latest.state));
        tick();
      }, () => {});
    };

    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        await cancelJob(summary.job_id);
      } catch (err) {
        cancel.disabled = false;
        if (err instanceof ApiError && err.status === 409) cancel.hidden = true;
      }
    });

    stream = new JobStream(summary, {
      onEvent: (event) => list.addEvent(event),
      onGap: (gap) => list.addGap(gap, summary.job_id, null),
      onTerminal: (name, data) => end(name, data),
      onStatus: (s) => status.connection(s),
      onLost: async () => {
        try {
          const latest = await getJob(summary.job_id);
          const name = terminalOfState(latest.state);
          if (name) {
            stream.close();
            end(name, latest);
          } else {
            stream.resume();
          }
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) {
            stream.close();
            ended = true;
            banner.replaceWith(
              h("div", { class: "banner banner-gone", role: "status" },
                h("span", { class: "banner-icon", "aria-hidden": "true" }, "?"),
                h("strong", {}, "Gone"),
                h("span", { class: "banner-text" }, "This job is no longer on the server (it expired, or the server restarted without it)."),
              ),
            );
          } else {
            stream.resume();
          }
        }
      },
    }).start();
  }

  return {
    unmount() {
      gone = true;
      stream?.close();
      clearInterval(ticker);
    },
  };
}

function failed(view, jobId, err) {
  if (err instanceof ApiError && err.status === 404) {
    notice(
      view,
      "Job not found",
      `No job ${jobId} on this server: the id is unknown, or the job finished longer ago than the server keeps jobs (its retention) and has expired.`,
      { kind: "warn" },
    );
  } else {
    notice(view, "Could not load the job", err.message, { kind: "error" });
  }
}
