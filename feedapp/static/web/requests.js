// The footer: the last requests to the API with their status, X-Cache tier and latency, so a
// person can watch the cache tiers answer (L1 worker memory, L2 Redis, L3 the database).
"use strict";

import { watchRequests } from "./api.js";

const KEEP = 12;

// "L1 · 304 · 4 ms · GET /api/feed": what matters first (a narrow footer cuts the end), the
// tier marked so that the style sheet can colour it.
function showEntry(element, { method, path, status, tier, ms }) {
  const tierMark = document.createElement("span");
  tierMark.className = "tier";
  tierMark.dataset.tier = tier || "";
  tierMark.textContent = tier || "–";
  element.replaceChildren(tierMark, ` ${status || "no answer"} · ${Math.round(ms)} ms · ${method} ${path}`);
}

/** Start showing requests in the footer, and let its button open the list. */
export function showRequests() {
  const toggle = document.getElementById("requests-toggle");
  const panel = document.getElementById("requests-panel");
  const last = document.getElementById("last-request");
  const list = panel.querySelector("[data-testid=requests]");
  toggle.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
  });
  watchRequests((entry) => {
    showEntry(last, entry);
    const item = document.createElement("li");
    showEntry(item, entry);
    Object.assign(item.dataset, { method: entry.method, path: entry.path, status: String(entry.status),
      tier: entry.tier || "", ms: entry.ms.toFixed(1) });
    list.prepend(item);
    while (list.children.length > KEEP) list.lastElementChild.remove();
  });
}
