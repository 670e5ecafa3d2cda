"""The body of GET /api/cache/stats, from the counters summed over every worker."""
from collections import defaultdict

TIERS = ("l1", "l2", "l3")


def summed(counters: dict, prefix: str) -> int:
    """Sum of the counters `<prefix>.<family>` over every family."""
    return sum(v for k, v in counters.items() if k.startswith(prefix + "."))


def stats_report(res) -> dict:
    """Counters of every worker of the deployment, in the shape API.md shows (and more)."""
    res.cache  # noqa: B018 - make this worker's caches, so its gauges are reported
    res.stats.flush()
    totals = res.stats.totals()
    counters = totals["counters"]
    requests = {tier: summed(counters, f"requests.{tier.upper()}") for tier in TIERS}
    answered = sum(requests.values())
    info = res.redis.info("memory")
    return {
        "hit_ratio": round((requests["l1"] + requests["l2"]) / answered, 4) if answered else 0.0,
        "requests": {"total": answered, **requests},
        "tiers": {
            "l1": {
                "hits": summed(counters, "l1.hits"),
                "misses": summed(counters, "l1.misses"),
                "size": totals["gauges"].get("l1.size", 0),
                "maxsize": totals["gauges"].get("l1.maxsize", 0),
            },
            "l2": {
                "hits": summed(counters, "l2.hits"),
                "misses": summed(counters, "l2.misses"),
                "keys": res.redis.dbsize(),
                "used_memory": info.get("used_memory_human", "0B"),
            },
            "l3": {"reads": summed(counters, "l3.reads")},
        },
        "invalidations": {
            name: counters.get(f"invalidations.{name}", 0)
            for name in ("published", "received", "acknowledged", "ack_timeouts", "gaps", "publish_failures")
        },
        "families": families(counters),
        "workers": totals["workers"],
    }


def families(counters: dict) -> dict:
    """{family: {"l1.hits": n, "requests.L1": n, ...}} from `<a>.<b>.<family>` counters."""
    table = defaultdict(dict)
    for name, value in counters.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] in ("l1", "l2", "l3", "requests"):
            table[parts[2]][f"{parts[0]}.{parts[1]}"] = value
    return dict(table)
