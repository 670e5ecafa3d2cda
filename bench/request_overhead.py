"""Where a cached read's time goes, in process: µs per request and per item of feedapp's work.

Builds the app (embedded store in memory, a private redis-server), warms one profile into
L1, then calls the WSGI app directly, back to back, for `GET /healthz`, for that profile
through Flask (the app without its answer replay) and for that profile replayed (alternating
rounds, medians), and samples the replayed requests with pyinstrument. Each item's share of
the samples, times the unprofiled time per request, is its cost in µs.

    python -m bench.request_overhead [--root DIR] [--requests 5000]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Items of a replayed profile read: (label, function names whose time counts, outermost call only).
ITEMS = [
    ("the WSGI call and the kept answer's lookup (AnswerReplay)", None),
    ("L1 still holds its values (TieredCache.still_holds)", ("TieredCache.still_holds",)),
    ("variant: coding and If-None-Match (_variant_key)", ("_variant_key",)),
    ("request id (request_id_for)", ("request_id_for",)),
    ("hit, tier and replay counters (Stats.count)", ("Stats.count",)),
    ("latency histogram, bucket and log line (requestlog.record)", ("record",)),
]


def build(root: Path, workdir: Path):
    sys.path.insert(0, str(root))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "prometheus")  # as under gunicorn
    (workdir / "prometheus").mkdir()
    from feedapp import create_app
    from feedapp.config import Config
    from feedapp.infra.embedded_redis import EmbeddedRedis

    redis = EmbeddedRedis(workdir / "redis", persist=False).start()
    config = Config(mongo_uri="memory://", redis_url=redis.url, data_dir=workdir / "var", jwt_secret="s" * 48,
                    password_hash_method="pbkdf2:sha256:1000", register_address_limit=0, log_level="WARNING")
    app = create_app(config)
    app.extensions["feedapp"].start()
    client = app.test_client()
    answer = client.post("/api/auth/register",
                         json={"username": "alice", "password": "password123", "email": "alice@example.com"})
    user_id = answer.get_json()["user"]["id"]
    for _ in range(200):  # until this worker trusts its L1 and holds the profile
        if client.get(f"/api/users/{user_id}").headers.get("X-Cache") == "L1":
            break
        time.sleep(0.02)
    else:
        raise RuntimeError("the profile never came from L1")
    return app, redis, f"/api/users/{user_id}"


def caller(app, path):
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path).get_environ()

    def start_response(status, headers, exc_info=None):
        pass

    def call():
        body = app(dict(environ), start_response)
        b"".join(body)
        if hasattr(body, "close"):  # WSGI: close what has close
            body.close()

    return call


def per_request_us(call, n) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1e6


def shares(call, n) -> dict:
    """{item label: share of the sampled time}."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0001)
    profiler.start()
    for _ in range(n):
        call()
    profiler.stop()
    root = profiler.last_session.root_frame()
    totals = {label: 0.0 for label, _ in ITEMS}
    names = {name: label for label, functions in ITEMS if functions for name in functions}

    def walk(frame):
        qualified = f"{getattr(frame, 'class_name', None)}.{frame.function}"
        label = names.get(qualified) or names.get(frame.function)
        if label is not None:
            totals[label] += frame.time
            return  # outermost only
        for child in frame.children:
            walk(child)

    walk(root)
    whole = root.time
    totals[ITEMS[0][0]] = whole - sum(totals.values())
    return {label: value / whole for label, value in totals.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="feedapp-overhead-"))
    app, redis, profile_path = build(Path(args.root), workdir)
    try:
        healthz, profile = caller(app, "/healthz"), caller(app, profile_path)
        through_flask = caller(app.wsgi_app.app, profile_path)  # the app without the replay
        rounds = {"healthz": [], "flask": [], "replayed": []}
        for _ in range(args.rounds):
            rounds["healthz"].append(per_request_us(healthz, args.requests))
            rounds["flask"].append(per_request_us(through_flask, args.requests))
            rounds["replayed"].append(per_request_us(profile, args.requests))
        h, f, p = (statistics.median(rounds[name]) for name in ("healthz", "flask", "replayed"))
        print(f"in process, medians of {args.rounds} alternating rounds of {args.requests} requests: "
              f"GET /healthz {h:.1f} µs; an L1-hit GET /api/users/<id> through Flask {f:.1f} µs, "
              f"replayed {p:.1f} µs")
        print("| item (replayed L1-hit profile read) | µs per request |\n|---|---|")
        for label, share in shares(profile, args.requests).items():
            print(f"| {label} | {share * p:.2f} |")
    finally:
        app.extensions["feedapp"].close()
        redis.stop()


if __name__ == "__main__":
    main()
