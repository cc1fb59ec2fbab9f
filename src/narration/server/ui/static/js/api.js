// The narration HTTP API, as the viewer uses it. Every request goes through `apiFetch`: the one
// place that adds headers (an auth token, when the server asks for one, slots in here).

/** The server's base URL: the viewer lives at `<base>/ui/`, so this works under a prefix. */
export const apiBase = new URL("../../", import.meta.url);

/** Headers added to every API request. */
export const requestHeaders = {};

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
