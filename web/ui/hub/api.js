// The hub API: same-origin fetches carrying the session cookie. Errors are
// ApiError with the server's {"code","message"}; a 401 anywhere means the
// session is gone (the page shows the login again).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = () => {};
/** setUnauthorized(fn): fn runs when an API call answers 401. */
export function setUnauthorized(fn) {
  onUnauthorized = fn;
}

/**
 * api(path, opts) calls the hub and returns the decoded JSON body (null for
 * an empty one). opts: method, json (a value sent as JSON), body and
 * contentType (sent as is), auth (false: a 401 is the caller's business,
 * as for the login itself), withStatus (return {status, body}).
 */
export async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", credentials: "same-origin", headers: { Accept: "application/json" } };
  if (opts.json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    init.headers["Content-Type"] = opts.contentType || "application/octet-stream";
    init.body = opts.body;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", `Cannot reach the hub (${err.message}).`);
  }
  const text = await res.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (res.ok) return opts.withStatus ? { status: res.status, body } : body;
  const code = (body && body.code) || (res.status === 401 ? "unauthorized" : "http_" + res.status);
  let message = (body && body.message) || text.trim() || res.statusText || `HTTP ${res.status}`;
  if (res.status === 413 && !(body && body.message)) message = "Too large for the hub.";
  const err = new ApiError(res.status, code, message);
  if (res.status === 401 && opts.auth !== false) {
    err.handled = true;
    onUnauthorized(err);
  }
  throw err;
}

/** enc(x) escapes one path segment. */
export const enc = (s) => encodeURIComponent(String(s));

/** The query string of an object, without empty values: "?a=1&b=x". */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? "?" + s : "";
}

/** The message to show for an error (nothing for a 401: the login shows). */
export function errorText(err) {
  if (err && err.handled) return "";
  return err && err.message ? err.message : String(err);
}
