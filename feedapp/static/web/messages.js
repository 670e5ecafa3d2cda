// What a person reads when a request fails: one sentence per error code of the API.
"use strict";

const FIELDS = { username: "Username", email: "Email", password: "Password", display_name: "Display name",
  content: "Post", q: "Search" };

/** A readable message for an ApiError; `action` says what failed ("Signing in"). */
export function describe(err, action = "That") {
  switch (err.code) {
    case "network":
      return `${action} failed: the server did not answer. Check your connection and try again.`;
    case "validation_error":
      return fieldMessages(err.details) || err.message;
    case "conflict":
      return `${err.message}. Choose another one, or sign in if it is yours.`;
    case "unauthorized":
      return err.authenticated ? "Your session has ended. Please sign in again." : `${err.message}.`;
    case "forbidden":
      return "You are not allowed to do that.";
    case "not_found":
      return `${err.message}.`;
    case "too_many_requests":
      return `Too many failed attempts. Try again in ${duration(err.retryAfter)}.`;
    case "service_unavailable":
      return `feedapp is briefly unavailable (${err.message.replace(/;.*$/, "")}). Try again in ${duration(err.retryAfter)}.`;
    case "invalid_json":
    case "method_not_allowed":
      // The page and the server disagree about the API: an old copy of the page, most likely.
      return `${action} failed: the server did not accept the request (${err.message}). Reload the page and try again.`;
    case "invalid_id":
      return "That link is broken: it does not name a user or post.";
    case "payload_too_large":
      return "That is too large to send.";
    case "idempotency_mismatch":
      return "This post was already sent with other text. Edit it again and post it anew.";
    default:
      return `${action} failed (${err.status ? `HTTP ${err.status}` : err.code}): ${err.message}`;
  }
}

function fieldMessages(details) {
  if (!details) return "";
  return Object.entries(details)
    .map(([field, messages]) => `${FIELDS[field] || field}: ${messages.join(" ")}`)
    .join(" ");
}

/** "45 s", "2 min", "1 h 5 min" for a number of seconds (a moment when unknown). */
export function duration(seconds) {
  if (!seconds) return "a moment";
  if (seconds < 90) return `${Math.ceil(seconds)} s`;
  const minutes = Math.ceil(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const STEPS = [[60, "second"], [60, "minute"], [24, "hour"], [30, "day"], [12, "month"], [Infinity, "year"]];

/** "3 minutes ago" for an ISO time. */
export function ago(iso, now = Date.now()) {
  let amount = (Date.parse(iso) - now) / 1000;
  for (const [size, unit] of STEPS) {
    if (Math.abs(amount) < size) return relative.format(Math.round(amount), unit);
    amount /= size;
  }
  return iso;
}
