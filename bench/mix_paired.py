"""The 90/10 read/write mix, configurations side by side: feedapp, L2 only and Flask-Caching.

`bench.run` measures configurations one after another, so the machine's drift between them
moves their ratios (on a shared 2-core VM a cell's req/s moves ±20-30 % within minutes). Here
the three deployments are up at once, each with its own copy of the store and its own
redis-server, and each is warmed by its own traffic (the mix's request list, sent once); then
ROUNDS rounds, each measuring every configuration for SECONDS in turn (the order rotates from
round to round). A round's ratios compare runs seconds apart; the table gives per
configuration the median req/s, and per ratio the median over rounds. Idle deployments cost
little (a listener's ping, a maintenance tick). The stale-read probe is `bench.run`'s.

    python -m bench.mix_paired [--rounds 5] [--seconds 6] [--quick]
"""
import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from feedapp.infra.embedded_redis import EmbeddedRedis
from feedapp.runtime.seed import DEMO_PASSWORD

from .deploy import BASELINE, FEEDAPP, Gunicorn
from .run import LABELS, WRITERS, ensure_wrk, ranked_ids, run_wrk, seed_store, warm_up
from .workload import Workloads, login_all

CONFIGS = ("tiered", "l2", "flask_caching")
RATIOS = (("tiered", "flask_caching"), ("tiered", "l2"))


def start(config, workdir: Path, store: Path) -> tuple:
    """(deployment, its redis-server) of one configuration, on copies of its own."""
    redis = EmbeddedRedis(workdir / config / "redis", persist=False).start()
    if store is not None:  # None: MONGO_URI's database, shared
        shutil.copytree(store, workdir / config / "data" / "store")
    env = {"REDIS_URL": redis.url, "LOG_LEVEL": "WARNING", "SEED_ON_START": "0"}
    if config == "flask_caching":
        dep = Gunicorn(config, BASELINE, workdir / config / "data", 4, {**env, "BASELINE_SECRET": os.urandom(32).hex()})
    else:
        dep = Gunicorn(config, FEEDAPP, workdir / config / "data", 4, {**env, "CACHE_MODE": config})
    try:
        dep.start()
    except BaseException:
        redis.stop()
        raise
    return dep, redis


def request_file(dep, workdir: Path, ranked, posts) -> tuple:
    """The mix's request list for `dep`, with tokens of its own logins: (file, lines)."""
    writers = [name for _, name in ranked[len(ranked) // 10::max(1, len(ranked) // (WRITERS * 2))]][:WRITERS]
    tokens = login_all(dep.base, writers, DEMO_PASSWORD)
    lines = Workloads(ranked_ids(ranked), posts).lines("mix_90_10", tokens)
    path = workdir / f"{dep.name}-mix.txt"
    Workloads.write(lines, path)
    return path, len(lines)


def measure(wrk, deps: dict, files: dict, args) -> dict:
    """{config: [req/s per round]}, configurations in turn within each round."""
    rounds = {config: [] for config in deps}
    order = list(deps)
    for n in range(args.rounds):
        for config in order[n % len(order):] + order[:n % len(order)]:
            result = run_wrk(wrk, deps[config].base, files[config], args.seconds, args.connections)
            rounds[config].append(result["rps"])
            if result["non_2xx"] or result["timeouts"]:
                print(f"  {config}: {result['non_2xx']} non-2xx answers, {result['timeouts']} timeouts", flush=True)
        print(f"  round {n + 1}: " + ", ".join(f"{c} {rounds[c][-1]:.0f}" for c in order), flush=True)
    return rounds


def table(rounds: dict) -> str:
    lines = ["| configuration | req/s (median) | rounds |", "|---|---|---|"]
    for config, values in rounds.items():
        lines.append(f"| {LABELS[config]} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    lines += ["", "| ratio | median of the rounds' ratios | per round |", "|---|---|---|"]
    for a, b in RATIOS:
        per_round = [x / y for x, y in zip(rounds[a], rounds[b])]
        lines.append(f"| {LABELS[a]} ÷ {LABELS[b]} | {statistics.median(per_round):.2f}× | "
                     f"{', '.join(f'{r:.2f}' for r in per_round)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6, help="length of one configuration's round")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 users, 5,000 posts, 2 rounds of 2 s")
    args = parser.parse_args(argv)
    args.connections, args.warmup, args.warmup_max = 16, 4, 30
    size = SimpleNamespace(users=10_000, posts=200_000)
    if args.quick:
        size, args.rounds, args.seconds, args.warmup_max = SimpleNamespace(users=500, posts=5_000), 2, 2, 4
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="feedapp-paired-"))
    started = time.perf_counter()
    deps, servers = {}, []
    try:
        store, ranked, posts = seed_store(size, workdir)
        files = {}
        for config in CONFIGS:
            deps[config], redis = start(config, workdir, store)
            servers.append(redis)
        for config, dep in deps.items():
            dep.wait_idle(timeout=90)
            files[config], length = request_file(dep, workdir, ranked, posts)
            warmed = warm_up(wrk, dep, files[config], length, args)
            print(f"  {LABELS[config]}: warmed up in {warmed} s", flush=True)
        rounds = measure(wrk, deps, files, args)
    finally:
        for dep in deps.values():
            dep.stop()
        for redis in servers:
            redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n90/10 mix, configurations side by side: wrk -c{args.connections}, {args.rounds} rounds of "
          f"{args.seconds} s each, order rotating ({time.perf_counter() - started:.0f} s in all)\n")
    print(table(rounds))


if __name__ == "__main__":
    main()
