"""Request latency histograms, correct under gunicorn.

With several workers, prometheus_client's multiprocess mode keeps each worker's samples in
files under PROMETHEUS_MULTIPROC_DIR (set by the gunicorn master before it forks, emptied at
each start; `child_exit` marks dead workers), and /metrics merges them, so nothing a worker
counted is lost when it dies. Cache counters come from the Redis totals (see stats.py).
"""
import os

from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess

REQUEST_SECONDS = Histogram(
    "feedapp_request_seconds",
    "Request latency by route, status class and the cache tier that answered",
    ["route", "method", "status", "tier"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def observe(route, method, status, tier, seconds):
    REQUEST_SECONDS.labels(route or "unmatched", method, f"{status // 100}xx", tier or "-").observe(seconds)


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
