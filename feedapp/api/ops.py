"""GET /healthz, /readyz and /metrics."""
from flask import Blueprint, Response, jsonify
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..errors import RETRY_AFTER
from . import resources
from .web import static_page

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    res = resources()
    mongo = _probe(res.repo.ping)
    # "redis" covers both servers: the cache's and the auth one (sessions; the same by default).
    redis = "ok" if _probe(res.redis.ping) == _probe(res.auth_redis.ping) == "ok" else "down"
    body = {"status": "ok" if mongo == redis == "ok" else "degraded", "mongo": mongo, "redis": redis}
    if mongo == "ok":
        return jsonify(body), 200
    return jsonify(body), 503, {"Retry-After": RETRY_AFTER}


@bp.get("/dashboard")
def dashboard():
    """The live cache dashboard (static HTML and script; it polls /api/cache/stats)."""
    return static_page(
        "dashboard.html",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:",
    )


@bp.get("/api/openapi.json")
def openapi():
    from ..http.openapi import build_spec

    return jsonify(build_spec())


@bp.get("/metrics")
def metrics():
    from ..observability.metrics import render

    return Response(render([_TotalsCollector(resources())]), mimetype="text/plain; version=0.0.4; charset=utf-8")


def _probe(ping) -> str:
    try:
        ping()
        return "ok"
    except Exception:  # noqa: BLE001 - any failure means "down" here
        return "down"


class _TotalsCollector:
    """Exposes the deployment-wide counters (summed over workers in Redis) and each live
    worker's gauges. Request latency histograms come from prometheus_client itself."""

    def __init__(self, res):
        self._res = res

    def collect(self):
        self._res.stats.flush()
        totals = self._res.stats.totals()
        requests = CounterMetricFamily(
            "feedapp_cache_requests", "Cacheable requests by the tier that answered", labels=["tier", "family"]
        )
        lookups = CounterMetricFamily(
            "feedapp_cache_lookups", "Cache lookups by tier, outcome and key family", labels=["tier", "outcome", "family"]
        )
        events = CounterMetricFamily(
            "feedapp_events", "Other cache events: fills, lease waits, invalidations, ...", labels=["event"]
        )
        for name, value in sorted(totals["counters"].items()):
            parts = name.split(".")
            if parts[0] == "latency":
                continue  # the dashboard's buckets; feedapp_request_seconds has them in full
            if len(parts) == 3 and parts[0] == "requests":
                requests.add_metric([parts[1], parts[2]], value)
            elif len(parts) == 3 and parts[0] in ("l1", "l2", "l3"):
                lookups.add_metric([parts[0].upper(), parts[1], parts[2]], value)
            else:
                events.add_metric([name], value)
        yield from (requests, lookups, events)
        yield from _worker_gauges(totals)


def _worker_gauges(totals):
    workers = GaugeMetricFamily("feedapp_workers", "Workers that reported in the last seconds")
    workers.add_metric([], totals["workers"])
    per_worker = {
        "l1.size": GaugeMetricFamily("feedapp_l1_entries", "Entries in a worker's L1", labels=["worker"]),
        "l1.maxsize": GaugeMetricFamily("feedapp_l1_maxsize", "Capacity of a worker's L1", labels=["worker"]),
        "l1.bytes": GaugeMetricFamily("feedapp_l1_bytes", "Encoded bytes in a worker's L1 (stash included)",
                                      labels=["worker"]),
        "l1.max_bytes": GaugeMetricFamily("feedapp_l1_max_bytes", "Byte budget of a worker's L1", labels=["worker"]),
        "listener.live": GaugeMetricFamily(
            "feedapp_listener_live", "1 while a worker's invalidation listener is subscribed", labels=["worker"]
        ),
        "breaker.open": GaugeMetricFamily(
            "feedapp_breaker_open", "1 while a worker's Redis circuit breaker is open", labels=["worker"]
        ),
    }
    for worker, gauges in totals["per_worker"].items():
        for name, family in per_worker.items():
            if name in gauges:
                family.add_metric([worker], gauges[name])
    yield workers
    yield from per_worker.values()
