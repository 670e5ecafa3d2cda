"""`make bench`: feedapp side by side with its own tiers switched off and a Flask-Caching app.

One session, one machine, one dataset, one load generator (wrk + bench/requests.lua):

1. seeds 10,000 users (Zipf-like follow graph) and 200,000 posts once, into an embedded store
   (or MONGO_URI), and copies that store for every configuration;
2. starts one redis-server (or uses REDIS_URL) and FLUSHDBs it before every configuration, so
   each starts cold and warms only through its own traffic (feedapp's own WARM_ON_START
   included, as shipped; the harness warms nothing);
3. per configuration starts gunicorn with 4 workers and LOG_LEVEL=WARNING (no per-request log
   lines) and runs each workload: a warm-up that is not measured, then ROUNDS x SECONDS of wrk;
   req/s, p50 and p99 are medians of the rounds; hit ratios and L3 reads are deltas of
   /api/cache/stats over the measured rounds; peak PSS (proportional set size) per worker is sampled from /proc;
4. writes bench/results/latest.md and latest.png and prints the table and the targets.

    .venv/bin/python -m bench.run            # the full run (~8-10 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick    # smoke run: small dataset, 2 s rounds
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import redis
import requests

from feedapp.config import Config
from feedapp.infra.embedded_redis import EmbeddedRedis
from feedapp.infra.store import EmbeddedDatabase, connect
from feedapp.repository import Repository
from feedapp.runtime.seed import DEMO_PASSWORD, seed_demo_data

from .deploy import BASELINE, FEEDAPP, ROOT, Gunicorn, RssSampler
from .workload import StaleProbe, Workloads, login_all

RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "requests.lua"
CONFIGS = ("tiered", "l2", "none", "flask_caching")
LABELS = {"ceiling": "ceiling (/healthz)", "tiered": "feedapp (L1+L2+L3)", "l2": "L2 only",
          "none": "no cache (L3)", "flask_caching": "Flask-Caching"}
WORKLOADS = ("profile", "feed", "read_mix", "mix_90_10")
WRITERS = 48  # users logged in for the 90/10 mix


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 users, 5,000 posts, 2 s rounds")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6, help="length of one measured round")
    parser.add_argument("--warmup", type=int, default=4,
                        help="unmeasured seconds before the rounds, at least; then the warm-up goes on "
                             "until the request list has been sent once (see warm_up), at most --warmup-max")
    parser.add_argument("--warmup-max", type=int, default=30, help="longest warm-up of one cell, seconds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--settle", type=int, default=90,
                        help="at most this many seconds to wait for the workers' own start-up work")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="subset, comma-separated")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="subset, comma-separated")
    parser.add_argument("--out", default=str(RESULTS / "latest"), help="writes OUT.md and OUT.png")
    parser.add_argument("--readme", action="store_true", help="also put the table into README.md")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy one worker during each cell's first round (bench/results/profile-*.txt)")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.posts, args.rounds, args.seconds, args.warmup, args.warmup_max = 500, 5_000, 2, 2, 1, 4
        if args.out == str(RESULTS / "latest"):
            args.out = str(RESULTS / "quick")
    return args


# --- tools -------------------------------------------------------------------------------------

def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], env=env).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update"], env=env, check=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], env=env, check=True)
    return shutil.which("wrk")


def run_wrk(wrk, base, requests_file, seconds, connections) -> dict:
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), base]
    out = subprocess.run(command, env={**os.environ, "BENCH_REQUESTS": str(requests_file)},
                         capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk said:\n{out.stdout}\n{out.stderr}")
    result = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


# --- the dataset -------------------------------------------------------------------------------

def seed_store(args, workdir):
    """Seed once; returns (store dir to copy or None, users ranked by followers, hot post ids)."""
    started = time.perf_counter()
    if os.environ.get("MONGO_URI"):
        source, repo = None, Repository(connect(Config.from_env()))
        repo.ensure_indexes()
        if repo.is_empty():
            seed_demo_data(repo, args.users, args.posts, random_seed=1)
        else:
            print("MONGO_URI store already has data: reusing it as is")
    else:
        source = workdir / "seed" / "store"
        repo = Repository(EmbeddedDatabase(source, "feedapp"))
        repo.ensure_indexes()
        seed_demo_data(repo, args.users, args.posts, random_seed=1)
    docs = list(repo.db.users.find({}, {"_id": 1, "username": 1, "followers_count": 1}))
    docs.sort(key=lambda d: (-d["followers_count"], d["_id"]))
    ranked = [(str(d["_id"]), d["username"]) for d in docs]
    posts = [str(p["_id"]) for uid, _ in ranked[:300] for p in repo.timeline(_oid(uid), 3)]
    print(f"dataset: {len(ranked)} users (most followed has {docs[0]['followers_count']} followers), "
          f"{args.posts} posts, seeded and indexed in {time.perf_counter() - started:.1f} s", flush=True)
    if hasattr(repo.db, "close"):
        repo.db.close()
    return source, ranked, posts


def _oid(text):
    from bson import ObjectId

    return ObjectId(text)


# --- one configuration -------------------------------------------------------------------------

def cache_stats(dep):
    """/api/cache/stats, or None when the deployment is too busy to answer within 2 minutes."""
    try:
        return requests.get(dep.url("/api/cache/stats"), timeout=120).json()
    except requests.RequestException as err:
        print(f"(cache stats unavailable: {err!r})", end=" ", flush=True)
        return None


def warm_up(wrk, dep, requests_file, length, args) -> float:
    """Send the cell's own request list, unmeasured, until all of it has been sent once (the
    measured rounds then replay it: a steady state, reached by traffic alone), for at least
    --warmup and at most --warmup-max seconds. wrk starts each run at the list's head, so
    after a short run that measures the rate, one run long enough for the whole list follows.
    Returns the seconds spent."""
    first = run_wrk(wrk, dep.base, requests_file, args.warmup, args.connections)
    needed = length / max(first["rps"], 1.0) * 1.1
    rest = min(max(needed, 0), args.warmup_max - args.warmup)
    if first["requests"] < length and rest >= 1:
        run_wrk(wrk, dep.base, requests_file, int(round(rest)), args.connections)
        return args.warmup + int(round(rest))
    return args.warmup


def measure(wrk, dep, name, lines, workdir, args, redis_client, probe=None, paired=None) -> dict:
    """Warm up, then ROUNDS x SECONDS of wrk; medians, stats deltas, peak RSS, Redis memory.

    paired: a request file (the ceiling's) run for a round just before each of this cell's
    rounds, on the same deployment: a ratio of the two medians then compares rounds taken
    seconds apart, whatever the machine's load does over the whole run."""
    requests_file = workdir / f"{dep.name}-{name}.txt"
    Workloads.write(lines, requests_file)
    print(f"  {LABELS[dep.name] if name != 'ceiling' else LABELS['ceiling']:<22} {name:<10}", end=" ", flush=True)
    with RssSampler(dep.worker_pids) as rss:
        warmed = warm_up(wrk, dep, requests_file, len(lines), args)
        time.sleep(1.2)  # every worker flushes its counters once a second
        before = cache_stats(dep) if name != "ceiling" else None
        spy = py_spy(dep, name, args) if args.profile else None
        rounds, paired_rounds = [], []
        with probe or nullcontext():
            for _ in range(args.rounds):
                if paired is not None:
                    paired_rounds.append(run_wrk(wrk, dep.base, paired, args.seconds, args.connections))
                rounds.append(run_wrk(wrk, dep.base, requests_file, args.seconds, args.connections))
        if spy is not None:
            spy.wait(30)
        time.sleep(1.2)
        after = cache_stats(dep) if name != "ceiling" else None
    total = sum(r["requests"] for r in rounds)
    cell = {
        "config": "ceiling" if name == "ceiling" else dep.name,
        "workload": name,
        "rps": statistics.median(r["rps"] for r in rounds),
        "p50_ms": statistics.median(r["p50_us"] for r in rounds) / 1000,
        "p99_ms": statistics.median(r["p99_us"] for r in rounds) / 1000,
        "rounds_rps": [round(r["rps"]) for r in rounds],
        **({"paired_ceiling_rps": statistics.median(r["rps"] for r in paired_rounds),
            "paired_rounds_rps": [round(r["rps"]) for r in paired_rounds]} if paired_rounds else {}),
        "requests": total,
        "warmup_s": warmed,
        "errors": sum(r["non_2xx"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
                      for r in rounds),
        "rss_mb": rss.peak_mb(),
        "redis_mb": redis_client.info("memory")["used_memory"] / 2**20,
    }
    if before is not None and after is not None and total:
        req = {t: after["requests"][t] - before["requests"][t] for t in ("total", "l1", "l2", "l3")}
        reads = after["tiers"]["l3"]["reads"] - before["tiers"]["l3"]["reads"]
        answered = req["total"] or 1
        cell.update({f"{t}_share": req[t] / answered for t in ("l1", "l2", "l3")})
        cell["hit_ratio"] = (req["l1"] + req["l2"]) / answered
        cell["l3_per_1k"] = 1000 * reads / max(total, 1)
    if probe is not None:
        cell["probe"] = probe.result()
    print(f"{cell['rps']:9.0f} req/s  p50 {cell['p50_ms']:7.2f} ms  p99 {cell['p99_ms']:8.2f} ms"
          + (f"  hit {cell['hit_ratio']:.3f}  L3/1k {cell['l3_per_1k']:.1f}" if "hit_ratio" in cell else "")
          + (f"  stale {cell['probe']['stale']}/{cell['probe']['reads']}" if probe else "")
          + (f"  errors {cell['errors']}" if cell["errors"] else ""), flush=True)
    return cell


def py_spy(dep, name, args):
    """Sample one worker for one round (collapsed stacks: `sort | uniq` them, or flamegraph.pl)."""
    out = RESULTS / f"profile-{dep.name}-{name}.txt"
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(dep.worker_pids()[0]),
               "--duration", str(args.seconds), "--format", "raw", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_config(config, wrk, args, workdir, source, ranked, posts, redis_url, redis_client) -> list:
    redis_client.flushdb()  # cold: this configuration warms only through its own traffic
    data_dir = workdir / config
    if source is not None:
        shutil.copytree(source, data_dir / "store")
    env = {"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "SEED_ON_START": "0"}
    if config == "flask_caching":
        env["BASELINE_SECRET"] = os.urandom(32).hex()
        dep = Gunicorn(config, BASELINE, data_dir, args.workers, env)
    else:
        dep = Gunicorn(config, FEEDAPP, data_dir, args.workers, {**env, "CACHE_MODE": config})
    cells = []
    with dep:
        waited = dep.wait_idle(timeout=args.settle)
        print(f"  started; workers idle after {waited:.0f} s (their own warm-up included)"
              + (" -- NOT idle: measuring anyway" if waited >= args.settle else ""), flush=True)
        writers = [name for _, name in ranked[len(ranked) // 10::max(1, len(ranked) // (WRITERS * 2))]][:WRITERS]
        probe_id, probe_name = ranked[len(ranked) // 2]
        tokens = login_all(dep.base, writers + [probe_name], DEMO_PASSWORD)
        ceiling_file = None
        if config == "tiered":
            cells.append(measure(wrk, dep, "ceiling", [("GET", "/healthz", "-", "")], workdir, args, redis_client))
            ceiling_file = workdir / f"{dep.name}-ceiling.txt"
        for workload in args.workloads.split(","):
            lines = Workloads(ranked_ids(ranked), posts).lines(workload, tokens[:-1])
            probe = StaleProbe(dep.base, probe_id, tokens[-1]) if workload == "mix_90_10" else None
            paired = ceiling_file if workload in ("profile", "read_mix") else None  # the "vs ceiling" targets
            cells.append(measure(wrk, dep, workload, lines, workdir, args, redis_client, probe, paired))
    return cells


def ranked_ids(ranked):
    return [uid for uid, _ in ranked]


# --- report ------------------------------------------------------------------------------------

def _pct(cell, key):
    return f"{cell[key] * 100:.1f}" if key in cell else "–"


def table(cells) -> str:
    head = ("| configuration | workload | req/s | p50 ms | p99 ms | L1 % | L2 % | L3 % | L3 reads / 1k req "
            "| peak PSS / worker MB | Redis MB | errors | stale reads |\n" + "|---" * 13 + "|\n")
    rows = []
    for c in cells:
        l3 = f"{c['l3_per_1k']:.1f}" if "l3_per_1k" in c else "–"
        stale = f"{c['probe']['stale']} of {c['probe']['reads']}" if "probe" in c else ""
        rows.append(
            f"| {LABELS[c['config']]} | {c['workload']} | {c['rps']:.0f} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} "
            f"| {_pct(c, 'l1_share')} | {_pct(c, 'l2_share')} | {_pct(c, 'l3_share')} | {l3} "
            f"| {c['rss_mb']:.0f} | {c['redis_mb']:.1f} | {c['errors']} | {stale} |"
        )
    return head + "\n".join(rows) + "\n"


def parse_micro(text) -> dict:
    """p50 µs per read from bench.micro's table."""
    found = {}
    for label, key in (("L1 hit", "l1"), ("bare redis-py", "redis"), ("L2 hit", "l2"), ("bare dict", "dict")):
        match = re.search(rf"\| {re.escape(label)}[^|]*\|\s*([\d.]+)", text)
        if match:
            found[key] = float(match.group(1))
    return found


def micro_results() -> dict:
    """bench.micro's figures: from bench/results/micro.txt if `make bench` just wrote it."""
    path = RESULTS / "micro.txt"
    if path.exists() and time.time() - path.stat().st_mtime < 3600:
        return parse_micro(path.read_text())
    out = subprocess.run([sys.executable, "-m", "bench.micro", "--rounds", "10000"], cwd=ROOT,
                         capture_output=True, text=True)
    return parse_micro(out.stdout)


def targets(cells, micro) -> list:
    """[(what, target, measured, met)] for the performance targets that this run measured."""
    get = {(c["config"], c["workload"]): c for c in cells}

    def rps(config, workload):
        cell = get.get((config, workload))
        return cell["rps"] if cell else None

    def ratio(a, b):
        return a / b if a and b else None

    rows = []

    def add(what, target, value, met, shown=None):
        if value is not None:
            rows.append((what, target, shown if shown is not None else f"{value:.2f}×", met))

    def vs_ceiling(workload):
        """Against the ceiling rounds run alternately with this cell's (see measure)."""
        cell = get.get(("tiered", workload))
        if cell is None:
            return None, ""
        ceiling = cell.get("paired_ceiling_rps") or rps("ceiling", "ceiling")
        return ratio(cell["rps"], ceiling), f" ({cell['rps']:.0f} vs {ceiling:.0f} req/s)"

    r, shown = vs_ceiling("profile")
    add("L1-hit profile read vs ceiling", "≥ 0.90 × req/s", r, r is not None and r >= 0.90,
        f"{r:.2f}×{shown}" if r is not None else None)
    r, shown = vs_ceiling("read_mix")
    add("read-only Zipf mix vs ceiling", "≥ 0.75 × req/s", r, r is not None and r >= 0.75,
        f"{r:.2f}×{shown}" if r is not None else None)
    mix = get.get(("tiered", "read_mix"))
    if mix and "l3_per_1k" in mix:
        add("read-only Zipf mix: L3 reads, hit ratio", "≤ 10 / 1k, ≥ 0.98", 0,
            mix["l3_per_1k"] <= 10 and mix["hit_ratio"] >= 0.98,
            f"{mix['l3_per_1k']:.1f} / 1k, {mix['hit_ratio']:.3f}")
    for other, floor in (("l2", 1.3), ("flask_caching", 1.3), ("none", 30)):
        r = ratio(rps("tiered", "feed"), rps(other, "feed"))
        add(f"feedapp vs {LABELS[other]} (home feeds)", f"≥ {floor} × req/s", r, r is not None and r >= floor)
    rw, ro = get.get(("tiered", "mix_90_10")), get.get(("tiered", "read_mix"))
    if rw and "probe" in rw:
        baseline = get.get(("flask_caching", "mix_90_10"))
        shown = f"{rw['probe']['stale']} of {rw['probe']['reads']}"
        if baseline and "probe" in baseline:
            shown += f" (Flask-Caching: {baseline['probe']['stale']} of {baseline['probe']['reads']})"
        add("90/10 mix: stale reads (history check)", "0", 0, rw["probe"]["stale"] == 0, shown)
    if rw and ro:
        r = rw["p99_ms"] / ro["p99_ms"]
        add("90/10 mix p99 vs read-only p99", "≤ 3 ×", r, r <= 3,
            f"{r:.2f}× ({rw['p99_ms']:.1f} vs {ro['p99_ms']:.1f} ms)")
    if "l1" in micro:
        add("L1 hit, in process", "≤ 2 µs", micro["l1"], micro["l1"] <= 2, f"{micro['l1']:.2f} µs")
    if "l2" in micro and "redis" in micro:
        r = micro["l2"] / micro["redis"]
        add("L2 hit vs bare redis-py GET + decode, in process", "≤ 1.3 ×", r, r <= 1.3,
            f"{r:.2f}× ({micro['l2']:.1f} vs {micro['redis']:.1f} µs)")
    return rows


def targets_table(rows) -> str:
    out = "| target | wanted | measured | |\n|---|---|---|---|\n"
    return out + "".join(f"| {w} | {t} | {m} | {'met' if ok else '**missed**'} |\n" for w, t, m, ok in rows)


def chart(cells, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [c for c in ("tiered", "l2", "none", "flask_caching") if any(x["config"] == c for x in cells)]
    workloads = [w for w in WORKLOADS if any(x["workload"] == w for x in cells)]
    get = {(c["config"], c["workload"]): c for c in cells}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / max(len(configs), 1)
    for metric, ax, title in (("rps", axes[0], "requests / s (log)"), ("p99_ms", axes[1], "p99 latency, ms (log)")):
        for i, config in enumerate(configs):
            values = [get[(config, w)][metric] if (config, w) in get else 0 for w in workloads]
            ax.bar([j + i * width for j in range(len(workloads))], values, width, label=LABELS[config])
        ceiling = get.get(("ceiling", "ceiling"))
        if ceiling:
            ax.axhline(ceiling[metric], color="black", linestyle="--", linewidth=1, label="ceiling (/healthz)")
        ax.set_xticks([j + width * (len(configs) - 1) / 2 for j in range(len(workloads))], workloads)
        ax.set_yscale("log")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.suptitle("feedapp side by side: 4 gunicorn workers, same data, same wrk load (medians of rounds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(cells, micro, args, seconds) -> str:
    rows = targets(cells, micro)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"# feedapp benchmark ({when})\n\n"
        f"{args.users:,} users, {args.posts:,} posts, Zipf s=1.1 over users ranked by followers; "
        f"{args.workers} gunicorn workers (gthread × 4) per configuration, LOG_LEVEL=WARNING; "
        f"wrk -t1 -c{args.connections}; an unmeasured warm-up that sends the cell's own request list once "
        f"({args.warmup}–{args.warmup_max} s), then {args.rounds} × "
        f"{args.seconds} s rounds (medians); the two targets against the ceiling compare with /healthz "
        f"rounds run alternately with the cell's rounds on the same deployment; "
        f"{os.cpu_count()} CPUs; whole run {seconds / 60:.1f} min.\n\n"
        f"{table(cells)}\n## Targets (ratios in this run)\n\n{targets_table(rows)}\n"
        "Workloads: `profile` = GET /api/users/<id>; `feed` = GET /api/users/<id>/feed; `read_mix` = "
        "profiles 40 %, feeds 30 %, timelines 20 %, posts 10 %; `mix_90_10` = that read mix at 90 % "
        f"and 10 % writes (posts 4, likes 3, profile edits 2, follows 1) from {WRITERS} logged-in users, "
        "with the stale-read probe (one writer renaming a user every 0.25 s, 2 readers on fresh "
        "connections; a read that starts after rename k returned and shows an older name is stale).\n"
    )


def update_readme(markdown):
    path = ROOT / "README.md"
    text = path.read_text()
    start, end = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        path.write_text(before + start + "\n" + markdown + end + rest.split(end, 1)[1])


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop every server we started, as on Ctrl-C
    started = time.perf_counter()
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="feedapp-bench-"))
    server = None
    cells = []
    try:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            server = EmbeddedRedis(workdir / "redis", persist=False).start()
            redis_url = server.url
        redis_client = redis.Redis.from_url(redis_url)
        source, ranked, posts = seed_store(args, workdir)
        for config in args.configs.split(","):
            print(f"{LABELS[config]}:", flush=True)
            cells += run_config(config, wrk, args, workdir, source, ranked, posts, redis_url, redis_client)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    micro = micro_results()
    markdown = report(cells, micro, args, time.perf_counter() - started)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(markdown)
    out.with_suffix(".json").write_text(json.dumps({"cells": cells, "micro": micro}, indent=1))
    chart(cells, out.with_suffix(".png"))
    print("\n" + markdown)
    print(f"written: {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    if args.readme:
        update_readme(table(cells) + "\n" + targets_table(targets(cells, micro)))


if __name__ == "__main__":
    main()
