// A virtualized, filterable list of narration rows: only the rows on screen exist in the DOM,
// so a job of 100,000 events scrolls and grows as smoothly as one of ten. Rows arrive one at a
// time and are drawn once per animation frame. It follows the newest row until the reader
// scrolls up, and again once they scroll back to the bottom.

import { h, fill } from "./dom.js";
import { clock, count, hue } from "./format.js";

export const ROW_HEIGHT = 26;
const OVERSCAN = 10;
export const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];
const RANK = Object.fromEntries(LEVELS.map((level, i) => [level, i]));

/** The text a mode shows: the plain `human` one, or its `cute` / `story` variant when set. */
export const textOf = (event, mode) => (mode !== "human" && event[mode]) || event.human || "";

/** `key=value key=value` of an event's fields. */
export function fieldsText(fields) {
  if (!fields) return "";
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
}

export class EventList {
  /**
   * `el`: the scrolling container. Options: `sorted` (insert by time, for several jobs),
   * `jobLabel(jobId)` (show a job column), `onSelect(row)` (a row was clicked).
   */
  constructor(el, { sorted = false, jobLabel = null, onSelect = null, onChange = null } = {}) {
    this.el = el;
    this.sorted = sorted;
    this.jobLabel = jobLabel;
    this.onSelect = onSelect;
    this.onChange = onChange;
    this.rows = []; // every row, in display order
    this.view = []; // the rows that pass the filter
    this.filter = { minLevel: "trace", actor: "", job: "", text: "" };
    this.mode = "human";
    this.showFields = false;
    this.actors = new Set();
    this.events = 0;
    this.follow = true;
    this.unseen = 0;
    this.selected = null;
    this.version = 0; // bumps when every drawn row must be redrawn (mode, columns)
    this.slots = [];
    this.frame = 0;
    this.autoTop = 0;

    el.classList.add("eventlist");
    if (jobLabel) el.classList.add("with-job");
    el.setAttribute("role", "log");
    this.spacer = h("div", { class: "spacer" });
    this.empty = h("div", { class: "list-empty" }, "Waiting for events…");
    el.append(this.spacer, this.empty);
    this.jump = h(
      "button",
      { class: "jump", type: "button", hidden: true, onclick: () => this.scrollToEnd() },
      "",
    );
    el.addEventListener("scroll", () => this._scrolled(), { passive: true });
    el.addEventListener("click", (e) => this._clicked(e));
    new ResizeObserver(() => this.schedule()).observe(el);
  }

  /** Add an event row (`event`: the wire JSON), a gap row or a terminal row. */
  addEvent(event, extra = {}) {
    this.events += 1;
    if (!this.actors.has(event.actor)) this.actors.add(event.actor);
    this._add({ kind: "event", ts: event.ts, job: event.job_id, event, ...extra });
  }

  addGap(gap, jobId, ts) {
    this._add({ kind: "gap", ts, job: jobId, gap });
  }

  addTerminal(name, data, jobId, ts) {
    this._add({ kind: "terminal", ts, job: jobId, name, data });
  }

  _add(row) {
    row.seq = this.rows.length;
    if (this.sorted) insertSorted(this.rows, row);
    else this.rows.push(row);
    if (this._passes(row)) {
      if (this.sorted) insertSorted(this.view, row);
      else this.view.push(row);
      if (!this.follow) this.unseen += 1;
    }
    this.schedule();
  }

  /** Drop the rows `predicate` picks (e.g. copies of events shown from their own job). */
  removeWhere(predicate) {
    const kept = this.rows.filter((row) => !predicate(row));
    if (kept.length === this.rows.length) return;
    this.rows = kept;
    this.events = kept.reduce((n, row) => n + (row.kind === "event"), 0);
    this.view = kept.filter((row) => this._passes(row));
    this.schedule();
  }

  setFilter(changes) {
    Object.assign(this.filter, changes);
    this.view = this.rows.filter((row) => this._passes(row));
    this.unseen = 0;
    this.schedule();
  }

  setMode(mode) {
    this.mode = mode;
    this.version += 1;
    this.schedule();
  }

  setShowFields(show) {
    this.showFields = show;
    this.el.classList.toggle("with-fields", show);
    this.version += 1;
    this.schedule();
  }

  scrollToEnd() {
    this.follow = true;
    this.unseen = 0;
    this.schedule();
  }

  /** Every row, as data (for tests and tools): kind, job, and the event id. */
  snapshot() {
    return this.rows.map((row) => ({
      kind: row.kind,
      job: row.job,
      id: row.kind === "event" ? row.event.id : null,
      actor: row.kind === "event" ? row.event.actor : null,
      ts: row.ts,
      name: row.name || null,
    }));
  }

  _passes(row) {
    const f = this.filter;
    if (f.job && row.job !== f.job) return false;
    if (row.kind !== "event") return true;
    const event = row.event;
    if ((RANK[event.level] ?? 2) < RANK[f.minLevel]) return false;
    if (f.actor && event.actor !== f.actor) return false;
    if (f.text) {
      const haystack = `${event.action} ${textOf(event, this.mode)} ${event.human}`.toLowerCase();
      if (!haystack.includes(f.text)) return false;
    }
    return true;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = 0;
    const el = this.el;
    const total = this.view.length;
    this.spacer.style.height = `${total * ROW_HEIGHT}px`;
    this.empty.hidden = this.rows.length > 0;
    if (this.follow) {
      const bottom = Math.max(0, total * ROW_HEIGHT - el.clientHeight);
      if (Math.abs(el.scrollTop - bottom) > 1) el.scrollTop = bottom;
      this.autoTop = el.scrollTop;
    }
    const first = Math.max(0, Math.floor(el.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const bottom = Math.ceil((el.scrollTop + el.clientHeight) / ROW_HEIGHT);
    const last = Math.min(total, bottom + OVERSCAN);
    let used = 0;
    for (let i = first; i < last; i++, used++) {
      let slot = this.slots[used];
      if (!slot) {
        slot = h("div", { class: "row" });
        this.slots.push(slot);
        el.append(slot);
      }
      const row = this.view[i];
      const selected = row === this.selected;
      if (slot.row !== row || slot.version !== this.version || slot.selected !== selected) {
        this._draw(slot, row);
      }
      if (slot.index !== i) {
        slot.index = i;
        slot.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
      }
      slot.hidden = false;
    }
    for (let i = used; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (slot.row !== null) {
        slot.hidden = true;
        slot.row = null;
        slot.className = "row";
        slot.replaceChildren();
        delete slot.dataset.id;
      }
    }
    if (!this.jump.isConnected) el.after(this.jump); // beside the list, once it is placed
    this.jump.hidden = this.follow || this.unseen === 0;
    this.jump.textContent = `↓ ${count(this.unseen)} new event${this.unseen === 1 ? "" : "s"}`;
    this.onChange?.(this);
  }

  _draw(slot, row) {
    slot.row = row;
    slot.version = this.version;
    slot.selected = row === this.selected;
    slot.className = `row ${row.kind}` + (slot.selected ? " selected" : "");
    const job = this.jobLabel ? this._jobCell(row.job) : null;
    if (row.kind === "gap") {
      const missed = row.gap.missed;
      delete slot.dataset.id;
      fill(
        slot,
        h("span", { class: "time" }), // a gap has no time of its own
        h(
          "span",
          { class: "gap-text" },
          `⚠ ${count(missed)} event${missed === 1 ? "" : "s"} not kept`,
          h(
            "span",
            { class: "muted" },
            " — the server dropped them to stay within its per-job limit; " +
              `next is #${row.gap.next_id}`,
          ),
        ),
      );
      if (job) slot.insertBefore(job, slot.children[1]);
      return;
    }
    if (row.kind === "terminal") {
      delete slot.dataset.id;
      fill(
        slot,
        h("span", { class: "time" }, clock(row.ts)),
        h("span", { class: `term term-${row.name}` }, terminalLabel(row.name, row.data)),
      );
      if (job) slot.insertBefore(job, slot.children[1]);
      return;
    }
    const event = row.event;
    slot.dataset.id = event.id;
    slot.dataset.level = event.level;
    const text = textOf(event, this.mode);
    fill(
      slot,
      h("span", { class: "time", title: new Date(event.ts * 1000).toISOString() }, clock(event.ts)),
      h("span", { class: `level lv-${event.level}` }, event.level),
      h("span", { class: `actor hue-${hue(event.actor)}`, title: event.actor }, event.actor),
      job,
      h("span", { class: "action", title: event.action }, event.action),
      h("span", { class: "human", title: text }, text),
      this.showFields ? h("span", { class: "fields" }, fieldsText(event.fields)) : null,
    );
  }

  _jobCell(jobId) {
    const label = this.jobLabel(jobId);
    return h("span", { class: `job hue-${label.hue}`, title: jobId }, label.text);
  }

  _scrolled() {
    const el = this.el;
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT;
    if (atBottom) {
      if (!this.follow) this.unseen = 0;
      this.follow = true;
    } else if (el.scrollTop < this.autoTop - 2) {
      this.follow = false; // the reader scrolled up: stop following
    }
    this.schedule();
  }

  _clicked(e) {
    const slot = e.target.closest(".row");
    if (!slot || !slot.row || slot.row.kind !== "event") return;
    this.selected = slot.row === this.selected ? null : slot.row;
    this.schedule();
    this.onSelect?.(this.selected);
  }
}

export function terminalLabel(name, data) {
  if (name === "done") return "✔ done";
  if (name === "cancelled") return `■ cancelled${data && data.error ? ": " + data.error : ""}`;
  return `✖ error: ${(data && data.error) || "failed"}`;
}

function before(a, b) {
  return a.ts < b.ts || (a.ts === b.ts && a.seq < b.seq);
}

/** Insert `row` into `rows` (sorted by time, then arrival), from the end: rows mostly arrive in
 * order, so this is usually one comparison. */
function insertSorted(rows, row) {
  let lo = 0;
  let hi = rows.length;
  if (hi === 0 || !before(row, rows[hi - 1])) {
    rows.push(row);
    return;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(row, rows[mid])) hi = mid;
    else lo = mid + 1;
  }
  rows.splice(lo, 0, row);
}

