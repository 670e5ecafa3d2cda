"""Request latency histograms, correct under gunicorn.

With several workers, prometheus_client's multiprocess mode keeps each worker's samples in
files under PROMETHEUS_MULTIPROC_DIR (set by the gunicorn master before it forks, emptied at
each start; `child_exit` marks dead workers), and /metrics merges them, so nothing a worker
counted is lost when it dies. Cache counters come from the Redis totals (see stats.py).
"""
import bisect
import os

from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess

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
