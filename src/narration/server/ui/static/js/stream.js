// Following one job's SSE stream with the browser's EventSource.
//
// Every frame of a narration stream is named, so `onmessage` never fires: listen by name.
// `narration` carries an event, `gap` says how many events the server did not keep, and exactly
// one terminal ends the stream: `done`, `cancelled`, or `error`. The terminal `error` shares its
// name with EventSource's own connection-error event: the terminal is a MessageEvent with data,
// a connection error is a bare Event. The source is closed on the terminal (otherwise the
// browser reconnects once more, and gets 204). Dropped connections are resumed by the browser
// with Last-Event-ID; ids already seen are skipped, so a resume never shows an event twice.
//
// EventSource dispatches each event as its own task (~50 µs each in Chromium), so a backlog of
// 100,000 events would take seconds. A job that already has events is first read with fetch()
// (the same stream, parsed here) up to what it had when the page opened; EventSource then takes
// over from the last id seen (`?after=`), for the live part and its reconnects.
//
// With an API key, the `sse_url` carries a stream token that expires: the URL is asked afresh
// (`GET /v1/jobs/{id}`) before each EventSource opens, so a reopen never uses a stale token.

import { apiKey, FINAL_STATES, getJob, requestHeaders, streamUrl } from "./api.js";

const TERMINALS = ["done", "error", "cancelled"];
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

/**
 * Follow `job` (a job summary: `job_id`, maybe `sse_url`). Callbacks:
 * onEvent(event), onGap({missed, next_id}), onTerminal(name, {job_id, state, error}),
 * onStatus("connecting" | "live" | "reconnecting" | "closed"), onLost() when the browser gave
 * up (the server answered something other than a stream: the job may be gone).
 */
export class JobStream {
  constructor(job, handlers) {
    this.job = job;
    this.handlers = handlers;
    this.lastId = 0;
    this.finished = false;
    this.source = null;
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = null;
  }

  start() {
    this._run();
    return this;
  }

  async _run() {
    const backlog = this.job.events > 0 || FINAL_STATES.has(this.job.state);
    if (backlog) {
      try {
        await this._catchUp(this.job.events || 0);
      } catch (err) {
        // a dropped or refused read: EventSource carries on from the last id seen
      }
    }
    if (!this.finished) this._open(this.lastId > 0);
  }

  close() {
    this.finished = true;
    clearTimeout(this.retryTimer);
    this.reading?.abort();
    if (this.source) this.source.close();
    this._status("closed");
  }

  /** Read the stream with fetch() until event `untilId` (or the terminal), then stop. */
  async _catchUp(untilId) {
    this._status("loading");
    const reading = new AbortController();
    this.reading = reading;
    const response = await fetch(streamUrl(this.job), {
      headers: { ...requestHeaders, Accept: "text/event-stream" },
      signal: reading.signal,
      cache: "no-store",
    });
    if (response.status !== 200 || !response.body) {
      reading.abort();
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      while (!this.finished && this.lastId < untilId) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let start = 0;
        let end;
        while (!this.finished && (end = buffer.indexOf("\n\n", start)) >= 0) {
          this._frame(buffer.slice(start, end));
          start = end + 2;
        }
        buffer = buffer.slice(start);
      }
    } finally {
      reading.abort();
    }
  }

  /** One SSE frame read by fetch: dispatched like EventSource would. */
  _frame(block) {
    let name = "message";
    let id = "";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (!data.length) return;
    this._dispatch(name, data.join("\n"), id);
  }

  _dispatch(name, data, lastEventId) {
    if (name === "narration") {
      const id = Number(lastEventId);
      if (id <= this.lastId) return; // already shown before a resume
      this.lastId = id;
      this.handlers.onEvent?.(JSON.parse(data));
    } else if (name === "gap") {
      const gap = JSON.parse(data);
      if (gap.next_id - 1 <= this.lastId) return;
      this.lastId = gap.next_id - 1;
      this.handlers.onGap?.(gap);
    } else if (TERMINALS.includes(name)) {
      this.finished = true;
      this.source?.close();
      this.lastId = Math.max(this.lastId, Number(lastEventId) || 0);
      this._status("closed");
      this.handlers.onTerminal?.(name, JSON.parse(data));
    }
  }

  /** Reopen after the browser gave up, from the last id seen (`?after=`). */
  resume() {
    if (this.finished) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._open(true), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** With an API key: a fresh `sse_url` (a new stream token) for the EventSource. */
  async _freshUrl() {
    if (!apiKey()) return;
    try {
      const latest = await getJob(this.job.job_id);
      if (latest.sse_url) this.job.sse_url = latest.sse_url;
    } catch (err) {
      // the EventSource reports what is wrong (and onLost asks the API again)
    }
  }

  async _open(fromLastId) {
    if (this.finished) return;
    await this._freshUrl();
    if (this.finished) return;
    const url = streamUrl(this.job);
    if (fromLastId && this.lastId > 0) url.searchParams.set("after", String(this.lastId));
    const source = new EventSource(url);
    this.source = source;
    this._status("connecting");
    source.addEventListener("open", () => {
      this.retryMs = RETRY_MIN_MS;
      this._status("live");
    });
    for (const name of ["narration", "gap", ...TERMINALS]) {
      source.addEventListener(name, (message) => {
        if (!(message instanceof MessageEvent)) {
          this._connectionError(source); // EventSource's own "error": not the terminal
          return;
        }
        this._dispatch(name, message.data, message.lastEventId);
      });
    }
  }

  _connectionError(source) {
    if (this.finished || source !== this.source) return;
    if (source.readyState === EventSource.CONNECTING) {
      this._status("reconnecting"); // the browser retries by itself, with Last-Event-ID
      return;
    }
    source.close();
    this._status("reconnecting");
    if (this.handlers.onLost) this.handlers.onLost();
    else this.resume();
  }

  _status(status) {
    this.handlers.onStatus?.(status);
  }
}
