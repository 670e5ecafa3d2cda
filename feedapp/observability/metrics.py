"""Request latency histograms, correct under gunicorn.

With several workers, prometheus_client's multiprocess mode keeps each worker's samples in
files under PROMETHEUS_MULTIPROC_DIR (set by the gunicorn master before it forks, emptied at
each start; `child_exit` marks dead workers), and /metrics merges them, so nothing a worker
counted is lost when it dies. Cache counters come from the Redis totals (see stats.py).
"""
import bisect
import os

from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# Upper bounds in seconds, doubling from 0.25 ms: fine enough to tell an L1 hit from an L2 hit.
LATENCY_BUCKETS = tuple(0.00025 * 2 ** i for i in range(14))  # 0.25 ms .. 2.048 s

REQUEST_SECONDS = Histogram(
    "feedapp_request_seconds",
    "Request latency by route, status class, key family and the deepest cache tier reached",
    ["route", "method", "status", "family", "tier"],
    buckets=LATENCY_BUCKETS,
)


_series = {}  # label values -> their histogram: few (routes x methods x classes x families x tiers)


def observe(route, method, status, family, tier, seconds):
    labels = (route or "unmatched", method, f"{status // 100}xx", family or "-", tier or "-")
    series = _series.get(labels)
    if series is None:  # labels() validates and locks on every call: once per series is enough
        series = _series[labels] = REQUEST_SECONDS.labels(*labels)
    series.observe(seconds)


_BUCKET_NAMES = tuple(str(round(bound * 1e6)) for bound in LATENCY_BUCKETS) + ("inf",)


def bucket_name(seconds: float) -> str:
    """The Stats counter suffix of the latency bucket holding `seconds`: its bound in µs."""
    return _BUCKET_NAMES[bisect.bisect_left(LATENCY_BUCKETS, seconds)]


def render(extra_collectors=()) -> bytes:
    """The text exposition of this deployment's metrics."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_SECONDS)
    for collector in extra_collectors:
        registry.register(collector)
    return generate_latest(registry)


class TotalsCollector:
    """Exposes the deployment-wide counters (summed over workers in Redis) and each live
    worker's gauges. Request latency histograms come from prometheus_client itself."""

    def __init__(self, stats):
        self._stats = stats

    def collect(self):
        self._stats.flush()
        totals = self._stats.totals()
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
