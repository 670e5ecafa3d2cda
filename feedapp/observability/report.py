"""The body of GET /api/cache/stats, from the counters summed over every worker."""
from collections import defaultdict

from ..infra.redis_access import primaries_total, used_memory_human

TIERS = ("l1", "l2", "l3")


def summed(counters: dict, prefix: str) -> int:
    """Sum of the counters `<prefix>.<family>` over every family."""
    return sum(v for k, v in counters.items() if k.startswith(prefix + "."))


def tier_counts(counters: dict) -> tuple:
    """(L1 hits, L2 hits, L3 reads) as /api/cache/stats reports them: cacheable requests, each
    counted once in the tier its X-Cache names (API.md); lookups are reported apart."""
    return tuple(summed(counters, f"requests.{tier}") for tier in ("L1", "L2", "L3"))


def stats_report(res, identities: bool = True) -> dict:
    """Counters of every worker of the deployment, in the shape API.md shows (and more);
    `per_worker` (host names and pids) only with identities. res: the Worker (its stats and
    its Redis client)."""
    res.stats.flush()
    totals = res.stats.totals()
    counters = totals["counters"]
    requests = dict(zip(TIERS, tier_counts(counters)))
    answered = sum(requests.values())
    report = {
        "hit_ratio": round((requests["l1"] + requests["l2"]) / answered, 4) if answered else 0.0,
        "requests": {"total": answered, **requests},
        "tiers": {
            "l1": l1_report(requests, counters, totals["gauges"]),
            "l2": l2_report(requests, counters, totals["gauges"], res.redis),
            "l3": {"reads": requests["l3"]},
        },
        # What the cascade looked up, key by key (a page reads many keys): per tier and family.
        "lookups": {
            "l1": {"hits": summed(counters, "l1.hits"), "misses": summed(counters, "l1.misses")},
            "l2": {"hits": summed(counters, "l2.hits"), "misses": summed(counters, "l2.misses")},
            "l3": {"reads": summed(counters, "l3.reads")},
        },
        "latency_ms": latency(counters),
        "invalidations": {
            name: counters.get(f"invalidations.{name}", 0)
            for name in ("published", "received", "acknowledged", "lease_waits", "gaps", "publish_failures")
        },
        "families": families(counters),
        "workers": totals["workers"],
    }
    if identities:
        report["per_worker"] = [worker_report(worker, gauges) for worker, gauges in totals["per_worker"].items()]
    return report


def l1_report(requests: dict, counters: dict, gauges: dict) -> dict:
    return {
        "hits": requests["l1"],
        "misses": requests["l2"] + requests["l3"],
        "size": gauges.get("l1.size", 0),
        "maxsize": gauges.get("l1.maxsize", 0),
        "bytes": gauges.get("l1.bytes", 0),
        "max_bytes": gauges.get("l1.max_bytes", 0),
        "too_large": gauges.get("l1.too_large", 0),  # values not kept, since each worker started
        "fills": counters.get("l1.fills", 0),
        "fills_refused": counters.get("l1.fills_refused", 0),
        "refreshes": counters.get("l1.refreshes", 0),
        "stale_if_error": summed(counters, "l1.stale_if_error"),
        "replayed": counters.get("answers.replayed", 0),  # of the hits, answered again without Flask
    }


def l2_report(requests: dict, counters: dict, gauges: dict, redis) -> dict:
    return {
        "hits": requests["l2"],
        "misses": requests["l3"],
        "keys": primaries_total(redis, "DBSIZE"),  # every primary of a cluster
        "used_memory": used_memory_human(redis),
        "fills": counters.get("l2.fills", 0),
        "fills_refused": counters.get("l2.fills_refused", 0),
        "lease_waits": counters.get("l2.lease_waits", 0),
        "unavailable": counters.get("l2.unavailable", 0),
        "breaker_open_workers": gauges.get("breaker.open", 0),
    }


def worker_report(worker: str, gauges: dict) -> dict:
    return {
        "worker": worker,
        "l1_size": gauges.get("l1.size", 0),
        "l1_maxsize": gauges.get("l1.maxsize", 0),
        "l1_bytes": gauges.get("l1.bytes", 0),
        "l1_max_bytes": gauges.get("l1.max_bytes", 0),
        "listener_live": bool(gauges.get("listener.live", 0)),
        "breaker_open": bool(gauges.get("breaker.open", 0)),
    }


def latency(counters: dict) -> dict:
    """Percentiles of cacheable requests' latency, from the `latency.<bound µs>` buckets."""
    buckets = {}
    for name, count in counters.items():
        if name.startswith("latency."):
            bound = name.split(".", 1)[1]
            buckets[float("inf") if bound == "inf" else int(bound) / 1000] = count
    ordered = sorted(buckets.items())
    return {
        "count": sum(buckets.values()),
        **{f"p{q}": quantile(ordered, q / 100) for q in (50, 90, 99)},
        "buckets": {("inf" if bound == float("inf") else f"{bound:g}"): n for bound, n in ordered},
    }


def quantile(buckets: list, q: float) -> float | None:
    """The q-quantile of [(upper bound, count)] sorted by bound, interpolating linearly
    within the bucket that holds it (as Prometheus's histogram_quantile does); None if empty.
    The dashboard's script does the same over the buckets' changes between two polls."""
    total = sum(count for _, count in buckets)
    if total == 0:
        return None
    rank, below, lower = q * total, 0, 0.0
    for bound, count in buckets:
        if count and below + count >= rank:
            if bound == float("inf"):
                return round(lower, 3)  # beyond the last bound: its lower edge is all we know
            return round(lower + (bound - lower) * (rank - below) / count, 3)
        below += count
        lower = bound if bound != float("inf") else lower
    return round(lower, 3)


def families(counters: dict) -> dict:
    """{family: {"l1.hits": n, "requests.L1": n, ...}} from `<a>.<b>.<family>` counters."""
    table = defaultdict(dict)
    for name, value in counters.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] in ("l1", "l2", "l3", "requests"):
            table[parts[2]][f"{parts[0]}.{parts[1]}"] = value
    return dict(table)
