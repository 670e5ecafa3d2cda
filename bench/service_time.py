"""Service time: what a cached read costs beyond the HTTP stack, measured from outside.

One connection sending requests back to back (`wrk -t1 -c1`), so the figure is the time one
request takes, not what two cores can overlap: stable to a few per cent on a shared VM where
req/s under load swings by ±20 %. Seven alternating rounds of `/healthz` and of each workload
on one 4-worker deployment; per workload the median over rounds of its p50 over the p50 of
the `/healthz` round just before it (the ratio), and of the difference (µs over /healthz).

Workloads (the dataset of `bench.run`, smaller: 1,000 users, 20,000 posts):
- `profile_l1`: one profile, again and again (an L1 hit on every worker after its first);
- `read_mix`: the Zipf read mix of `bench.run` (profiles, feeds, timelines, posts).

With `--against DIR` (another checkout of feedapp) both run side by side, each its own
deployment, rounds alternating between them, and the table shows both.

    python -m bench.service_time [--rounds 7] [--seconds 3] [--against DIR]
"""
import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from .deploy import FEEDAPP, ROOT, Gunicorn
from .run import ensure_wrk, ranked_ids, run_wrk, seed_store
from .workload import Workloads

HEALTHZ = [("GET", "/healthz", "-", "")]


def request_files(workdir: Path, ranked, posts) -> dict:
    """{workload: request list file}, /healthz first."""
    lists = {
        "healthz": HEALTHZ,
        "profile_l1": [("GET", f"/api/users/{ranked[0][0]}", "-", "")],
        "read_mix": Workloads(ranked_ids(ranked), posts, length=5_000).lines("read_mix"),
    }
    files = {}
    for name, lines in lists.items():
        files[name] = workdir / f"{name}.txt"
        Workloads.write(lines, files[name])
    return files


def start(name, root, workdir, store) -> Gunicorn:
    data_dir = workdir / name
    shutil.copytree(store, data_dir / "store")
    env = {"LOG_LEVEL": "WARNING", "SEED_ON_START": "0", "WARM_ON_START": "0"}
    dep = Gunicorn(f"service-{name}", FEEDAPP, data_dir, workers=4, env=env, root=root)
    dep.start(timeout=180)
    dep.wait_idle()
    return dep


def rounds_of(wrk, deps, files, args) -> dict:
    """{deployment: {workload: [(p50 µs, p50 µs of the /healthz round before it)]}}."""
    results = {name: {w: [] for w in files if w != "healthz"} for name in deps}
    for name, dep in deps.items():  # warm-up: every workload's list once, unmeasured
        for workload, path in files.items():
            run_wrk(wrk, dep.base, path, args.seconds, 1)
    for _ in range(args.rounds):
        for name, dep in deps.items():
            for workload, path in files.items():
                if workload == "healthz":
                    continue
                ceiling = run_wrk(wrk, dep.base, files["healthz"], args.seconds, 1)
                measured = run_wrk(wrk, dep.base, path, args.seconds, 1)
                results[name][workload].append((measured["p50_us"], ceiling["p50_us"]))
    return results


def table(results) -> str:
    lines = ["| deployment | workload | p50 µs | /healthz p50 µs | µs over /healthz | ratio (/healthz ÷ it) |",
             "|---|---|---|---|---|---|"]
    for name, workloads in results.items():
        for workload, pairs in workloads.items():
            over = statistics.median(p - c for p, c in pairs)
            ratio = statistics.median(c / p for p, c in pairs)
            lines.append(f"| {name} | {workload} | {statistics.median(p for p, _ in pairs):.0f} | "
                         f"{statistics.median(c for _, c in pairs):.0f} | {over:.0f} | {ratio:.2f}× |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="another feedapp checkout to measure beside this one")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=3, help="length of one round")
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="feedapp-service-"))
    deps = {}
    started = time.perf_counter()
    try:
        store, ranked, posts = seed_store(SimpleNamespace(users=1_000, posts=20_000), workdir)
        files = request_files(workdir, ranked, posts)
        roots = {"this": ROOT, **({"against": Path(args.against).resolve()} if args.against else {})}
        for name, root in roots.items():
            deps[name] = start(name, root, workdir, store)
        results = rounds_of(wrk, deps, files, args)
    finally:
        for dep in deps.values():
            dep.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"service time, one connection, 4 workers, medians of {args.rounds} alternating rounds "
          f"of {args.seconds} s ({time.perf_counter() - started:.0f} s in all):")
    print(table(results))


if __name__ == "__main__":
    main()
