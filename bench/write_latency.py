"""What a write costs its client: PATCH /api/me and POST /api/posts against 4 gunicorn workers.

Each round sends `--writes` of each, back to back on one keep-alive connection, as demo users
(the demo seed's follow graph, so a post fans out to real followers), and reports p50 and p99
per request. With `--against DIR` (another checkout of feedapp, e.g. the last release) both
run side by side, each its own deployment, in alternating rounds; medians over rounds.

    python -m bench.write_latency [--against DIR] [--rounds 7] [--writes 100]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from .deploy import FEEDAPP, ROOT, Gunicorn
from .workload import login_all

DEMO_PASSWORD = "password123"
SEED = {"SEED_ON_START": "1", "SEED_USERS": "200", "SEED_POSTS": "2000", "WARM_ON_START": "0"}


def one_round(dep, tokens, writes: int, round_no: int) -> dict:
    """{"patch": [ms...], "post": [ms...]} of one round."""
    times = {"patch": [], "post": []}
    with requests.Session() as session:
        for i in range(writes):
            headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
            for kind, method, path, body in (
                ("patch", "PATCH", "/api/me", {"bio": f"round {round_no} write {i}"}),
                ("post", "POST", "/api/posts", {"content": f"round {round_no} post {i}"}),
            ):
                started = time.perf_counter()
                response = session.request(method, dep.url(path), json=body, headers=headers, timeout=30)
                times[kind].append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
    return times


def percentile(values, q) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="another feedapp checkout to measure beside this one")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args(argv)
    roots = {"this": ROOT}
    if args.against:
        roots["against"] = Path(args.against).resolve()
    work = Path(tempfile.mkdtemp(prefix="feedapp-writes-"))
    deps = {name: Gunicorn(f"writes-{name}", FEEDAPP, work / name, env=SEED, root=root) for name, root in roots.items()}
    try:
        tokens = {}
        for name, dep in deps.items():
            dep.start(timeout=180)
            dep.wait_idle()
            tokens[name] = login_all(dep.base, [f"demo1_{i:05d}" for i in range(20, 60)], DEMO_PASSWORD)
        rows = {name: {"patch": [], "post": []} for name in deps}
        for round_no in range(args.rounds):
            for name, dep in deps.items():  # alternating: both see the same machine
                times = one_round(dep, tokens[name], args.writes, round_no)
                for kind, values in times.items():
                    rows[name][kind].append((statistics.median(values), percentile(values, 0.99)))
        print(f"write latency, 4 workers, {args.writes} writes of each kind per round, "
              f"medians of {args.rounds} alternating rounds (ms):")
        print(f"{'':10} {'PATCH p50':>10} {'PATCH p99':>10} {'POST p50':>10} {'POST p99':>10}")
        for name, kinds in rows.items():
            cells = [statistics.median(r[i] for r in kinds[kind]) for kind in ("patch", "post") for i in (0, 1)]
            print(f"{name:10} " + " ".join(f"{c:10.2f}" for c in cells))
    finally:
        for dep in deps.values():
            dep.stop()


if __name__ == "__main__":
    main()
