"""GET /healthz, /readyz and /metrics."""
from flask import Blueprint, Response, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import resources

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    res = resources()
    mongo = _probe(res.repo.ping)
    redis = _probe(res.redis.ping)
    body = {"status": "ok" if mongo == redis == "ok" else "degraded", "mongo": mongo, "redis": redis}
    return jsonify(body), 200 if mongo == "ok" else 503


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    registry.register(_TotalsCollector(resources()))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4; charset=utf-8")


def _probe(ping) -> str:
    try:
        ping()
        return "ok"
    except Exception:  # noqa: BLE001 - any failure means "down" here
        return "down"


class _TotalsCollector:
    """Exposes the deployment-wide counters (summed over workers in Redis)."""

    def __init__(self, res):
        self._res = res

    def collect(self):
        res = self._res
        res.stats.flush()
        totals = res.stats.totals()
        counters = totals["counters"]
        requests = CounterMetricFamily(
            "feedapp_cache_requests", "Cacheable requests by the tier that answered", labels=["tier", "family"]
        )
        reads = CounterMetricFamily("feedapp_l3_reads", "Loads from the store (L3)", labels=["family"])
        for name, value in sorted(counters.items()):
            parts = name.split(".")
            if len(parts) == 4 and parts[0] == "family" and parts[2] == "requests":
                requests.add_metric([parts[3], parts[1]], value)
            elif len(parts) == 3 and parts[0] == "family" and parts[2] == "l3_reads":
                reads.add_metric([parts[1]], value)
        workers = GaugeMetricFamily("feedapp_workers", "Workers that reported in the last seconds")
        workers.add_metric([], totals["workers"])
        yield from (requests, reads, workers)
