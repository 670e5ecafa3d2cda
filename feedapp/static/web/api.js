// The JSON API as a browser client uses it: bearer tokens kept in localStorage and refreshed
// once when a request answers 401, conditional re-reads (ETag and body per URL, in memory),
// and a report of every request (status, X-Cache tier, latency) for the footer.
"use strict";

export const TOKENS = "feedapp.tokens";  // localStorage key
const VALIDATORS_MAX = 300;  // URLs remembered for If-None-Match; the oldest are forgotten first

const validators = new Map();  // url -> {etag, body}
const watchers = new Set();
let refreshing = null;  // the refresh in flight, shared by every request that got a 401

/** An answer other than 2xx/304, or no answer at all (status 0, code "network"). */
export class ApiError extends Error {
  constructor(status, body, headers, { authenticated = false } = {}) {
    const error = (body && body.error) || {};
    super(error.message || (status ? `HTTP ${status}` : "No answer from the server"));
    this.status = status;
    this.code = error.code || (status ? "error" : "network");
    this.details = error.details || null;
    this.retryAfter = Number(headers?.get("Retry-After")) || Number(this.details?.retry_after) || null;
    this.authenticated = authenticated;  // a 401 of a signed-in request: the session is over
  }
}

export const tokens = {
  get() {
    try {
      return JSON.parse(localStorage.getItem(TOKENS));
    } catch {
      return null;
    }
  },
  set({ access_token, refresh_token }) {
    localStorage.setItem(TOKENS, JSON.stringify({ access_token, refresh_token }));
  },
  clear() {
    localStorage.removeItem(TOKENS);
    validators.clear();  // bodies read with these tokens (the home feed, the profile)
  },
};

/** Call `listener({method, path, status, tier, ms})` after every request. */
export function watchRequests(listener) {
  watchers.add(listener);
}

/** The body of `method path` (null for 204); throws ApiError. `auth` sends the bearer token
 * and, on a 401, refreshes the tokens and tries once more. */
export async function api(method, path, { body, auth = false, headers = {} } = {}) {
  let used = auth ? bearer() : null;
  let response = await send(method, path, body, used, headers);
  if (response.status === 401 && used && (await refreshAfter(used))) {
    used = bearer();
    response = await send(method, path, body, used, headers);
  }
  return read(method, path, response, Boolean(used));
}

function bearer() {
  const saved = tokens.get();
  if (!saved) throw new ApiError(401, { error: { code: "unauthorized", message: "Not signed in" } }, null,
    { authenticated: true });
  return saved.access_token;
}

async function send(method, path, body, accessToken, extra) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  const known = method === "GET" ? validators.get(path) : undefined;
  if (known) headers["If-None-Match"] = known.etag;
  const started = performance.now();
  let response = null;
  try {
    // no-store: the revalidation is ours (If-None-Match above), so 304s reach this code.
    response = await fetch(path, {
      method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
    });
    return response;
  } catch {
    throw new ApiError(0, null, null);
  } finally {
    const ms = performance.now() - started;
    const entry = { method, path, status: response ? response.status : 0, tier: response?.headers.get("X-Cache"), ms };
    for (const watcher of watchers) watcher(entry);
  }
}

async function read(method, path, response, authenticated) {
  if (response.status === 304 && validators.has(path)) {
    const known = validators.get(path);
    validators.delete(path);  // re-inserted: the most recently used is forgotten last
    validators.set(path, known);
    return known.body;
  }
  let body = null;
  if (response.status !== 204) {
    try {
      body = await response.json();
    } catch {
      body = null;  // e.g. a proxy's HTML error page
    }
  }
  if (!response.ok) throw new ApiError(response.status, body, response.headers, { authenticated });
  const etag = response.headers.get("ETag");
  if (method === "GET" && etag) remember(path, etag, body);
  return body;
}

function remember(path, etag, body) {
  validators.delete(path);
  validators.set(path, { etag, body });
  if (validators.size > VALIDATORS_MAX) validators.delete(validators.keys().next().value);
}

// True when the request that was refused with `rejected` can be sent again: the tokens were
// refreshed, by this call or by another request (or tab) meanwhile. A refresh the server
// refuses ends the session; one that fails otherwise (503, no network) is thrown.
function refreshAfter(rejected) {
  const saved = tokens.get();
  if (!saved) return Promise.resolve(false);
  if (saved.access_token !== rejected) return Promise.resolve(true);
  refreshing ??= (async () => {
    try {
      tokens.set(await api("POST", "/api/auth/refresh", { body: { refresh_token: saved.refresh_token } }));
      return true;
    } catch (err) {
      if (err.status !== 401) throw err;
      tokens.clear();
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}
