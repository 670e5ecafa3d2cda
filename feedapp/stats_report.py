"""The body of GET /api/cache/stats and the samples of GET /metrics, from summed counters."""
from collections import defaultdict

TIERS = ("L1", "L2", "L3")


def stats_report(res) -> dict:
    """Counters of every worker of the deployment, in the shape API.md shows."""
    res.stats.flush()
    totals = res.stats.totals()
    counters = totals["counters"]
    requests = {tier: counters.get(f"requests.{tier}", 0) for tier in TIERS}
    answered = sum(requests.values())
    info = res.redis.info("memory")
    return {
        "hit_ratio": round((requests["L1"] + requests["L2"]) / answered, 4) if answered else 0.0,
        "requests": {"total": answered, **{tier.lower(): n for tier, n in requests.items()}},
        "tiers": {
            "l1": {
                "hits": counters.get("l1.hits", 0),
                "misses": counters.get("l1.misses", 0),
                "size": counters.get("l1.size", 0),
                "maxsize": res.config.l1_maxsize,
            },
            "l2": {
                "hits": counters.get("l2.hits", 0),
                "misses": counters.get("l2.misses", 0),
                "keys": res.redis.dbsize(),
                "used_memory": info.get("used_memory_human", "0B"),
            },
            "l3": {"reads": counters.get("l3.reads", 0)},
        },
        "invalidations": {
            "published": counters.get("invalidations.published", 0),
            "received": counters.get("invalidations.received", 0),
        },
        "families": _families(counters),
        "workers": totals["workers"],
    }


def _families(counters) -> dict:
    families = defaultdict(dict)
    for name, value in counters.items():
        if name.startswith("family."):
            _, family, metric = name.split(".", 2)
            families[family][metric] = value
    return dict(families)
