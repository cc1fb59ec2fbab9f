// Following one job's SSE stream with the browser's EventSource.
//
// Every frame of a narration stream is named, so `onmessage` never fires: listen by name.
// `narration` carries an event, `gap` says how many events the server did not keep, and exactly
// one terminal ends the stream: `done`, `cancelled`, or `error`. The terminal `error` shares its
// name with EventSource's own connection-error event: the terminal is a MessageEvent with data,
// a connection error is a bare Event. The source is closed on the terminal (otherwise the
// browser reconnects once more, and gets 204). Dropped connections are resumed by the browser
// with Last-Event-ID; ids already seen are skipped, so a resume never shows an event twice.

import { streamUrl } from "./api.js";

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
    this._open(false);
    return this;
  }

  close() {
    this.finished = true;
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this._status("closed");
  }

  /** Reopen after the browser gave up, from the last id seen (`?after=`). */
  resume() {
    if (this.finished) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._open(true), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  _open(fromLastId) {
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
    source.addEventListener("narration", (message) => {
      const id = Number(message.lastEventId);
      if (id <= this.lastId) return; // already shown before a resume
      this.lastId = id;
      const event = JSON.parse(message.data);
      this.handlers.onEvent?.(event);
    });
    source.addEventListener("gap", (message) => {
      const gap = JSON.parse(message.data);
      if (gap.next_id - 1 <= this.lastId) return;
      this.lastId = gap.next_id - 1;
      this.handlers.onGap?.(gap);
    });
    for (const name of TERMINALS) {
      source.addEventListener(name, (message) => {
        if (!(message instanceof MessageEvent)) {
          this._connectionError(source); // EventSource's own "error": not the terminal
          return;
        }
        this.finished = true;
        source.close();
        this.lastId = Math.max(this.lastId, Number(message.lastEventId) || 0);
        this._status("closed");
        this.handlers.onTerminal?.(name, JSON.parse(message.data));
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
