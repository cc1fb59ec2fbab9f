// The narration HTTP API, as the viewer uses it. Every request goes through `apiFetch`: the one
// place that adds headers. When the server asks for an API key (401), the page asks the person
// for one; it is kept in sessionStorage (this tab only, gone when it closes) and sent as
// `Authorization: Bearer`. EventSource cannot send headers: it uses the `sse_url` the API gives,
// which then carries a short-lived stream token for that one job.

/** The server's base URL: the viewer lives at `<base>/ui/`, so this works under a prefix. */
export const apiBase = new URL("../../", import.meta.url);

/** Headers added to every API request. */
export const requestHeaders = {};

const KEY_STORAGE = "narration.apiKey";

/** The API key in use, or null. */
export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch (err) {
    return null; // storage disabled: no key kept
  }
}

/** Use `key` from now on (null forgets it). */
export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch (err) {
    // storage disabled: the key lives as long as this page
  }
  if (key) requestHeaders.Authorization = `Bearer ${key}`;
  else delete requestHeaders.Authorization;
}

setApiKey(apiKey());

/** Fired on window when the server answered 401: the page asks for a key. */
export const UNAUTHORIZED_EVENT = "narration:unauthorized";

/** An API error: `status`, the stable `code` and a readable `message`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** fetch() an API path (relative to the server's base); the parsed JSON body, or ApiError. */
export async function apiFetch(path, init = {}) {
  const headers = { Accept: "application/json", ...requestHeaders, ...(init.headers || {}) };
  let response;
  try {
    response = await fetch(new URL(path, apiBase), { ...init, headers });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the server does not answer (${err.message})`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && body.error;
    if (response.status === 401) {
      window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail: error }));
    }
    throw new ApiError(
      response.status,
      (error && error.code) || "http_" + response.status,
      (error && error.message) || `${response.status} ${response.statusText}`,
    );
  }
  return body;
}

export function listJobs({ state, correlationId, limit = 100 } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (state) query.set("state", state);
  if (correlationId) query.set("correlation_id", correlationId);
  return apiFetch(`v1/jobs?${query}`);
}

export const getJob = (jobId) => apiFetch(`v1/jobs/${encodeURIComponent(jobId)}`);

export const cancelJob = (jobId) =>
  apiFetch(`v1/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE" });

/** The URL to stream a job from: the `sse_url` the API gave (it may carry a read token),
 * else the stream route of the job. */
export function streamUrl(job) {
  const path = job.sse_url || `v1/jobs/${encodeURIComponent(job.job_id)}/stream`;
  return new URL(path, apiBase);
}

export const FINAL_STATES = new Set(["completed", "failed", "cancelled"]);
