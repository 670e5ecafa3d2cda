"""What counting costs on an L1-hit request: the same GET /api/users/<id>, answered from L1,
with the stats counters on and with `Stats.count` made a no-op, side by side in one run
(alternating rounds, medians). Also the cost of one `count` call on its own.

    .venv/bin/python -m bench.stats_overhead [--rounds N] [--requests N]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

from feedapp import create_app
from feedapp.config import Config
from feedapp.infra.embedded_redis import EmbeddedRedis


def per_request_us(client, path, n) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        response = client.get(path)
    elapsed = time.perf_counter_ns() - start
    assert response.status_code == 200 and response.headers["X-Cache"] == "L1", response.headers
    return elapsed / n / 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="feedapp-overhead-"))
    with EmbeddedRedis(workdir / "redis", persist=False) as server:
        config = Config(redis_url=server.url, data_dir=workdir, log_level="WARNING", warm_on_start=False)
        app = create_app(config.with_secret())
        app.extensions["feedapp"].start()
        res = app.extensions["feedapp"]
        user = res.repo.create_user("bench_user", "bench@example.com", "x", "Bench User")
        res.listener.wait_live(5)
        client, path = app.test_client(), f"/api/users/{user['_id']}"
        client.get(path)  # L3, then L1 from here on
        counting = res.stats.count
        results = {"with stats": [], "without stats": []}
        for _ in range(args.rounds):  # alternate, so drift on the machine hits both alike
            res.stats.count = counting
            results["with stats"].append(per_request_us(client, path, args.requests))
            res.stats.count = lambda name, amount=1: None
            results["without stats"].append(per_request_us(client, path, args.requests))
        res.stats.count = counting
        one_count = min(timed_count(counting) for _ in range(5))
        res.close()
    with_stats, without = (statistics.median(results[k]) for k in ("with stats", "without stats"))
    print(f"L1-hit request (Flask test client, GET {path.split('/')[1]}/users/<id>), "
          f"median of {args.rounds} rounds × {args.requests} requests\n")
    print("| setup | µs per request | ratio |\n|---|---|---|")
    print(f"| without stats (count is a no-op) | {without:.1f} | 1.000× |")
    print(f"| with stats (as shipped) | {with_stats:.1f} | {with_stats / without:.3f}× |")
    print(f"\noverhead: {with_stats - without:+.2f} µs per request "
          f"({100 * (with_stats / without - 1):+.1f} %); one Stats.count call: {one_count:.0f} ns; "
          "an L1-hit request makes 3 (l1.hits, requests.L1, latency) and no Redis round trip")


def timed_count(count, n=200_000) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        count("l1.hits.profile")
    return (time.perf_counter_ns() - start) / n


if __name__ == "__main__":
    main()
