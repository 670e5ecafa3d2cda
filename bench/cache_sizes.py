"""Measured memory of one cached entry, per key family, in L2 (Redis) and in L1 (a worker).

Seeds demo data with the app's own code (feedapp.runtime.seed, on the embedded store), serves
reads through the app (Flask test client, real redis-server from feedapp.infra.embedded_redis) so
the caches fill exactly as in production, then measures:
- L2: `MEMORY USAGE <key> SAMPLES 0` of every cache key (key, value and Redis's overhead),
  and the payload (STRLEN); for feeds and timelines also the bytes per list entry (a
  least-squares line over the cached lists);
- L1: the Python heap (tracemalloc) that a fresh `LocalCache` grows by when it takes the same
  entries, decoded from the same payloads (key string, value objects, cachetools' records).
Half the users get a 120-character bio and an avatar URL first, so profiles come in two sizes.
The figures are per entry, so a small data set is enough (feeds already reach LIST_CAP).

    python -m bench.cache_sizes [--users 400] [--posts 4000] [--feeds 120]
"""
import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import redis

from feedapp import create_app
from feedapp.cache.local import LocalCache
from feedapp.cache.postlists import PostListCodec
from feedapp.config import Config
from feedapp.infra.embedded_redis import EmbeddedRedis
from feedapp.runtime.seed import seed_demo_data

FAMILIES = ("profile", "post", "feed", "timeline")


def build_app(redis_url, data_dir):
    config = Config(
        redis_url=redis_url, data_dir=Path(data_dir),
        jwt_secret="cache-sizes-" + "x" * 40, password_hash_method="pbkdf2:sha256:1000",
        warm_on_start=False, seed_on_start=False, log_level="WARNING",
    )
    app = create_app(config)
    app.extensions["feedapp"].start()
    return app


def seed(res, users, posts):
    """Demo data; every other user gets a bio and an avatar. Returns the user ids."""
    seed_demo_data(res.repo, users, posts, fanout_limit=res.config.fanout_limit)
    ids = [doc["_id"] for doc in res.repo.db.users.find({}, {"_id": 1})]
    for user_id in ids[::2]:
        res.repo.update_profile(user_id, {"bio": "b" * 120, "avatar_url": f"https://cdn.example.com/a/{user_id}.jpg"})
    return ids


def read_through_the_app(client, ids, feeds):
    """Fill L1 and L2 the way clients would: profiles, home feeds, timelines (and the posts
    those listings show)."""
    for user_id in ids:
        assert client.get(f"/api/users/{user_id}").status_code == 200
    for user_id in ids[:feeds]:
        assert client.get(f"/api/users/{user_id}/feed").status_code == 200
        assert client.get(f"/api/users/{user_id}/posts").status_code == 200


def l2_sizes(redis_client, prefix) -> dict:
    """{family: [(key, MEMORY USAGE, STRLEN)]}."""
    sizes = {family: [] for family in FAMILIES}
    for family in FAMILIES:
        for key in redis_client.scan_iter(f"{prefix}:cache:{family}:*", count=1000):
            usage = redis_client.memory_usage(key, samples=0)
            if usage is not None and redis_client.type(key) == b"string":
                sizes[family].append((key.decode(), usage, redis_client.strlen(key)))
    return sizes


def l1_bytes_per_entry(res, keys, redis_client) -> float:
    """Heap bytes one L1 entry costs: a fresh LocalCache takes keys decoded from L2."""
    raws = [(key, redis_client.get(key)) for key in keys]
    codec = res.policy(res.keys.family(keys[0]))[0]
    local = LocalCache(len(raws) + 1, lambda key: 60)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key, raw in raws:
        key = key.encode().decode()  # a key string of its own, as each request builds one
        local.fill(key, local.begin(key), codec.decode(raw))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(local) == len(raws)
    return grown / len(raws)


def per_entry_line(redis_client, rows) -> tuple:
    """(fixed bytes, bytes per entry, lengths): MEMORY USAGE against list length (least squares)."""
    lengths = [len(PostListCodec.decode(redis_client.get(key)).entries) for key, _, _ in rows]
    usages = [usage for _, usage, _ in rows]
    if len(set(lengths)) < 2:
        return None, None, lengths
    slope, intercept = statistics.linear_regression(lengths, usages)
    return intercept, slope, lengths


def report(res, redis_client, sizes, ids) -> list:
    lines = [f"{'family':<22}{'keys':>6}{'L2 MEMORY USAGE mean':>22}{'median':>8}{'payload mean':>14}{'L1 heap/entry':>15}"]
    halves = {"profile (no bio)": ids[1::2], "profile (bio+avatar)": ids[::2]}
    groups = {name: [r for r in sizes["profile"] if r[0] in {res.keys.profile(i) for i in members}]
              for name, members in halves.items()}
    groups.update({family: sizes[family] for family in FAMILIES if family != "profile"})
    for name, rows in groups.items():
        if not rows:
            continue
        usage = [u for _, u, _ in rows]
        l1 = l1_bytes_per_entry(res, [k for k, _, _ in rows], redis_client)
        lines.append(f"{name:<22}{len(rows):>6}{statistics.mean(usage):>22.0f}{statistics.median(usage):>8.0f}"
                     f"{statistics.mean(p for _, _, p in rows):>14.0f}{l1:>15.0f}")
    for family in ("feed", "timeline"):
        fixed, per_entry, lengths = per_entry_line(redis_client, sizes[family])
        if per_entry is not None:
            lines.append(f"{family}: L2 ≈ {fixed:.0f} B + {per_entry:.1f} B per post entry "
                         f"(lists of {min(lengths)}–{max(lengths)} entries, mean {statistics.mean(lengths):.0f})")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--feeds", type=int, default=120, help="users whose feed and timeline are read")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir, EmbeddedRedis(Path(workdir) / "redis", persist=False) as server:
        app = build_app(server.url, Path(workdir) / "var")
        res = app.extensions["feedapp"]
        redis_client = redis.Redis.from_url(server.url)
        try:
            started = time.perf_counter()
            ids = seed(res, args.users, args.posts)
            read_through_the_app(app.test_client(), ids, args.feeds)
            sizes = l2_sizes(redis_client, res.keys.prefix)
            info = redis_client.info("memory")
            print(f"{args.users} users, {args.posts} posts, {args.feeds} feeds and timelines read "
                  f"({time.perf_counter() - started:.0f} s); redis {redis_client.info('server')['redis_version']}, "
                  f"used_memory {info['used_memory_human']} for {redis_client.dbsize()} keys")
            print("\n".join(report(res, redis_client, sizes, ids)))
        finally:
            redis_client.close()
            res.close()


if __name__ == "__main__":
    main()
