// The cache dashboard: polls GET /api/cache/stats and draws what changed between polls.
// No build step and no library: numbers go into elements marked data-stat="<path in the
// stats body>", charts are inline SVG polylines over the last POINTS polls.
"use strict";

const POINTS = 90;
const params = new URLSearchParams(location.search);
const INTERVAL = Math.max(250, Number(params.get("interval")) || 2000);
const WINDOW_MS = 2000;  // workers flush their counts once a second: rates need a wider window
const history = [];  // per poll: {rate, tiers: [l1, l2, l3], p50, p99, published, received}
const snapshots = [];  // recent {body, t}
let polls = 0;

// The q-quantile of [[upper bound, count]] sorted by bound, interpolating within the bucket
// that holds it: the same rule as stats_report.quantile on the server.
function quantile(buckets, q) {
  const total = buckets.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0, lower = 0;
  for (const [bound, count] of buckets) {
    if (count && below + count >= rank) {
      if (bound === Infinity) return round3(lower);
      return round3(lower + (bound - lower) * (rank - below) / count);
    }
    below += count;
    if (bound !== Infinity) lower = bound;
  }
  return round3(lower);
}

function round3(x) { return Math.round(x * 1000) / 1000; }

function bucketList(body) {
  return Object.entries(body.latency_ms.buckets)
    .map(([bound, n]) => [bound === "inf" ? Infinity : Number(bound), n])
    .sort((a, b) => a[0] - b[0]);
}

function lookup(body, path) {
  return path.split(".").reduce((node, part) => (node == null ? undefined : node[part]), body);
}

function format(value, kind) {
  if (value === null || value === undefined) return "–";
  switch (kind) {
    case "int": return Number(value).toLocaleString("en-US");
    case "percent": return (100 * value).toFixed(1) + " %";
    case "ms": return Number(value).toFixed(2) + " ms";
    default: return String(value);
  }
}

function showNumbers(body) {
  for (const el of document.querySelectorAll("[data-stat]")) {
    const value = lookup(body, el.dataset.stat);
    el.dataset.value = value === null || value === undefined ? "" : JSON.stringify(value);
    el.textContent = format(value, el.dataset.format);
  }
  for (const el of document.querySelectorAll("[data-ratio]")) {
    const tier = lookup(body, el.dataset.ratio);
    const lookups = tier.hits + tier.misses;
    el.textContent = format(lookups ? tier.hits / lookups : null, "percent");
  }
}

function showWorkers(body) {
  const box = document.getElementById("workers");
  if (!body.per_worker) {  // production shows which workers run where to admins only
    box.textContent = "per-worker details are shown in development, or to an admin";
    return;
  }
  box.replaceChildren(...body.per_worker.map((w, i) => {
    const row = document.createElement("div");
    row.className = "worker";
    const fill = w.l1_maxsize ? Math.min(1, w.l1_size / w.l1_maxsize) : 0;
    const flags = [w.listener_live ? "listener live" : "listener DOWN", w.breaker_open ? "breaker OPEN" : "breaker closed"];
    row.innerHTML = `<span class="name"></span><div class="bar"><div></div></div><span class="level"></span>`;
    row.querySelector(".name").textContent = w.worker;
    row.querySelector(".bar div").style.width = (100 * fill).toFixed(1) + "%";
    const level = row.querySelector(".level");
    level.textContent = `${format(w.l1_size, "int")} / ${format(w.l1_maxsize, "int")} · ${flags.join(", ")}`;
    level.dataset.stat = `per_worker.${i}.l1_size`;
    level.dataset.value = JSON.stringify(w.l1_size);
    if (!w.listener_live || w.breaker_open) level.classList.add("flag-bad");
    return row;
  }));
}

// What happened between two polls: rates per second, shares, windowed percentiles.
function delta(now, before, seconds) {
  const d = (path) => lookup(now, path) - lookup(before, path);
  const answered = d("requests.total");
  const old = new Map(bucketList(before));
  const window = bucketList(now).map(([bound, n]) => [bound, n - (old.get(bound) || 0)]);
  return {
    rate: answered / seconds,
    tiers: ["l1", "l2", "l3"].map((t) => (answered ? d(`requests.${t}`) / answered : null)),
    p50: quantile(window, 0.5),
    p99: quantile(window, 0.99),
    published: d("invalidations.published") / seconds,
    received: d("invalidations.received") / seconds,
  };
}

function drawChart(id, series, labels, fixedMax) {
  const svg = document.getElementById(id);
  const W = 360, H = 140, left = 34, bottom = 14, top = 6;
  const values = series.flat().filter((v) => v !== null && isFinite(v));
  const max = fixedMax || Math.max(1e-9, ...values) * 1.1;
  const x = (i) => left + (W - left - 4) * (i / (POINTS - 1));
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const parts = [];
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    parts.push(`<line class="grid" x1="${left}" x2="${W - 4}" y1="${y(v)}" y2="${y(v)}"/>`);
    parts.push(`<text x="2" y="${y(v) + 3}">${v >= 100 ? v.toFixed(0) : v.toFixed(2)}</text>`);
  }
  series.forEach((points, s) => {
    const offset = POINTS - points.length;
    const coords = points.map((v, i) => (v === null ? null : `${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`));
    const path = coords.filter(Boolean).join(" ");
    if (path) parts.push(`<polyline class="s${s}" points="${path}"/>`);
  });
  labels.forEach((label, s) => parts.push(`<text class="t${s}" x="${left + 4 + s * 60}" y="${H - 2}">${label}</text>`));
  svg.innerHTML = parts.join("");
}

function drawCharts() {
  const pick = (f) => history.map(f);
  drawChart("chart-rate", [pick((h) => h.rate)], ["req/s"]);
  drawChart("chart-tiers", [0, 1, 2].map((i) => pick((h) => h.tiers[i])), ["L1", "L2", "L3"], 1);
  drawChart("chart-latency", [pick((h) => h.p50), pick((h) => h.p99)], ["p50", "p99"]);
  drawChart("chart-invalidations", [pick((h) => h.published), pick((h) => h.received)], ["published", "received"]);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/api/cache/stats", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    const now = performance.now();
    showNumbers(body);
    showWorkers(body);
    if (snapshots.length) {
      // Compare with the newest poll at least WINDOW_MS old (or the oldest kept).
      const base = snapshots.filter((s) => now - s.t >= WINDOW_MS).pop() || snapshots[0];
      const change = delta(body, base.body, (now - base.t) / 1000);
      history.push(change);
      if (history.length > POINTS) history.shift();
      document.getElementById("rate").textContent = change.rate.toFixed(1);
      drawCharts();
    }
    snapshots.push({ body, t: now });
    while (snapshots.length > 2 && now - snapshots[1].t >= WINDOW_MS) snapshots.shift();
    polls += 1;
    const counter = document.getElementById("polls");
    counter.textContent = String(polls);
    counter.dataset.polls = String(polls);
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    status.textContent = "live";
    status.className = "";
  } catch (err) {
    status.textContent = `stats unavailable (${err.message}); retrying`;
    status.className = "error";
  } finally {
    setTimeout(poll, INTERVAL);
  }
}

window.feedappDashboard = { quantile };
poll();
