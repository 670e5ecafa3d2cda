"""What compressing a 100-post feed page costs and saves, in process and from outside.

1. Levels: bytes and CPU (µs, process time) of one compression of the page, br and gzip at
   several levels; feedapp uses feedapp.http.compression.BROTLI_QUALITY and GZIP_LEVEL.
2. Hooks: one request through Flask's test client with no compression, feedapp's hook and
   Flask-Compress (same br quality), alternating rounds; and the ETags each sends per encoding.
3. From outside: gunicorn (one worker, the embedded store seeded with demo data), one
   keep-alive connection, back-to-back GETs of the page as identity, br and gzip in
   alternating rounds: p50/p90 service time and bytes on the wire.

    .venv/bin/python -m bench.compression [--requests N]
"""
import argparse
import gzip
import http.client
import json
import statistics
import tempfile
import time
import zlib
from pathlib import Path

import brotli
from flask import Flask, Response

from feedapp.api import _conditional
from feedapp.http import compression
from feedapp.http.representations import Representation

from .deploy import FEEDAPP, Gunicorn

ROUNDS = 10
CODINGS = ("identity", "br", "gzip")


def median_us(fn, n=200, clock=time.process_time_ns) -> float:
    samples = []
    for _ in range(n):
        start = clock()
        fn()
        samples.append(clock() - start)
    return statistics.median(samples) / 1000


def levels(body: bytes):
    print(f"\n### One compression of the page ({len(body):,} bytes of JSON), CPU µs (process time, median)\n")
    print("| coding | level | bytes | % of plain | CPU µs | |\n|---|---|---|---|---|---|")
    cases = [("br", q, lambda q=q: brotli.compress(body, quality=q)) for q in range(1, 7)]
    cases += [("gzip", lvl, lambda lvl=lvl: zlib.compress(body, lvl, wbits=31)) for lvl in (1, 4, 6, 9)]
    chosen = {("br", compression.BROTLI_QUALITY), ("gzip", compression.GZIP_LEVEL)}
    for coding, level, fn in cases:
        size = len(fn())
        mark = "**feedapp**" if (coding, level) in chosen else ""
        print(f"| {coding} | {level} | {size:,} | {100 * size / len(body):.1f} | {median_us(fn):.0f} | {mark} |")


def hooks(body: bytes):
    """Per-request time in a bare Flask app serving the page: no hook, ours, Flask-Compress."""
    from flask_compress import Compress

    def app_with(setup):
        app = Flask(__name__)

        @app.get("/page")
        def page():  # a page composed for this request: its tag and variants made anew
            response = Response(body, mimetype="application/json")
            response.representation = representation = Representation(None, body)
            return _conditional(response, representation.tag)

        setup(app)
        return app.test_client()

    def flask_compress(app):
        app.config.update(COMPRESS_ALGORITHM=["br", "gzip"], COMPRESS_BR_LEVEL=compression.BROTLI_QUALITY,
                          COMPRESS_LEVEL=compression.GZIP_LEVEL, COMPRESS_MIN_SIZE=compression.MIN_SIZE)
        Compress(app)

    clients = {"no compression": app_with(lambda app: None), "feedapp's hook": app_with(compression.init_app),
               "Flask-Compress": app_with(flask_compress)}
    samples = {name: [] for name in clients}
    for _ in range(ROUNDS):
        for name, client in clients.items():
            get = lambda: client.get("/page", headers={"Accept-Encoding": "br"})  # noqa: E731
            samples[name] += [median_us(get, n=30, clock=time.perf_counter_ns)]
    print("\n### One request for the page through Flask's test client, Accept-Encoding: br (µs, median of rounds)\n")
    print("| app | µs per request | ETag (br) | ETag (gzip) | If-None-Match: the br tag, asked as gzip |")
    print("|---|---|---|---|---|")
    for name, client in clients.items():
        br = client.get("/page", headers={"Accept-Encoding": "br"}).headers.get("ETag")
        gz = client.get("/page", headers={"Accept-Encoding": "gzip"}).headers.get("ETag")
        again = client.get("/page", headers={"Accept-Encoding": "gzip", "If-None-Match": br}).status_code
        print(f"| {name} | {statistics.median(samples[name]):.0f} | `{br}` | `{gz}` | {again} |")


def find_page(server) -> str:
    """The path of a seeded user's home feed page with 100 posts."""
    for n in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", f"/api/users/by-username/demo1_{n:05d}")
        user = json.loads(conn.getresponse().read())
        path = f"/api/users/{user['id']}/feed?limit=100"
        conn.request("GET", path, headers={"Accept-Encoding": "identity"})
        if len(json.loads(conn.getresponse().read())["items"]) == 100:
            return path
    raise RuntimeError("no seeded user has 100 posts in their feed")


def from_outside(server, path, n: int) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    samples, sizes = {c: [] for c in CODINGS}, {}
    decoders = {"identity": lambda b: b, "br": brotli.decompress, "gzip": gzip.decompress}
    bodies = {}
    for round_ in range(ROUNDS + 1):  # round 0 warms up (L1, connections) and is not counted
        for coding in CODINGS:
            for _ in range(max(1, n // ROUNDS)):
                start = time.perf_counter()
                conn.request("GET", path, headers={"Accept-Encoding": coding})
                response = conn.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - start
                assert response.status == 200 and response.getheader("X-Cache") == "L1", response.status
                if round_:
                    samples[coding].append(elapsed * 1000)
                sizes[coding] = len(body)
                bodies[coding] = decoders[coding](body)
    assert bodies["br"] == bodies["gzip"] == bodies["identity"]
    print(f"\n### From outside: {path}, one keep-alive connection, {n} GETs per coding in {ROUNDS} "
          "alternating rounds (gunicorn, 1 worker, L1 hits)\n")
    print("| Accept-Encoding | bytes on the wire | p50 ms | p90 ms |\n|---|---|---|---|")
    for coding in CODINGS:
        q = statistics.quantiles(samples[coding], n=10)
        print(f"| {coding} | {sizes[coding]:,} | {statistics.median(samples[coding]):.2f} | {q[8]:.2f} |")
    conn.close()
    return bodies["identity"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000, help="GETs per coding from outside")
    args = parser.parse_args()
    env = {"SEED_ON_START": "1", "SEED_USERS": "200", "SEED_POSTS": "8000", "WARM_ON_START": "0",
           "LOG_LEVEL": "WARNING", "FEEDAPP_ENV": "development", "MONGO_URI": "", "REDIS_URL": "",
           "AUTH_REDIS_URL": "", "JWT_SECRET": ""}
    workdir = Path(tempfile.mkdtemp(prefix="feedapp-compression-"))
    with Gunicorn("compression", FEEDAPP, workdir / "var", workers=1, env=env) as server:
        path = find_page(server)
        body = from_outside(server, path, args.requests)
    levels(body)
    hooks(body)


if __name__ == "__main__":
    main()
