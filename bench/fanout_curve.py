"""What one post costs to write through to its author's followers' cached feeds, as the
follower count grows 1 → 100,000.

The same call the app makes (`Writer.write_through`: Lua inserts into the cached feeds, 500
feeds per call, then one invalidation message that another listening worker applies and
acknowledges), against a private redis-server, every follower's feed cached (20 entries).
Medians of a few posts per size. Above FANOUT_LIMIT (1,000 by default) the app stops pushing
and merges the author's timeline at read time instead (services/fanout.py): this curve is why.

    .venv/bin/python -m bench.fanout_curve
"""
import statistics
import tempfile
import time

import mongomock
import redis
from bson import ObjectId

from feedapp.cache.keys import Keys
from feedapp.cache.policy import make_policy
from feedapp.cache.postlists import PostList, PostListCodec
from feedapp.cache.tiers import build_tiers
from feedapp.config import Config
from feedapp.infra.embedded_redis import EmbeddedRedis
from feedapp.infra.store import LockedDatabase
from feedapp.observability.stats import Stats
from feedapp.repository import Repository

SIZES = (1, 10, 100, 1_000, 10_000, 100_000)
ENTRIES, CAP = 20, 200


def cached_feeds(client, keys, n, start):
    payload = PostListCodec.encode(PostList(tuple(f"{start - i:015d}{ObjectId()}" for i in range(ENTRIES)), False))
    feeds = [keys.feed(ObjectId()) for _ in range(n)]
    for begin in range(0, n, 5000):
        with client.pipeline(transaction=False) as pipe:
            for key in feeds[begin:begin + 5000]:
                pipe.set(key, payload, ex=3600)
            pipe.execute()
    return feeds


def worker(server, keys, config, repo, name):
    """One worker's tiers (as the app builds them), started and trusting its caches."""
    client = redis.Redis.from_url(server.url, socket_timeout=10)
    tiers = build_tiers(config, keys=keys, policy=make_policy(config), stats=Stats(lambda: client, keys),
                        redis=client, subscriber=lambda: redis.Redis.from_url(server.url, socket_timeout=10),
                        repo=repo, origin=name).start()
    deadline = time.monotonic() + 5
    while not tiers.trust.l1() and time.monotonic() < deadline:
        time.sleep(0.01)
    return client, tiers


def main():
    keys = Keys("bench:v1")
    config = Config(l1_maxsize=10_000, l1_refresh_window=0)
    repo = Repository(LockedDatabase(mongomock.MongoClient(tz_aware=False)["bench"]))
    with EmbeddedRedis(tempfile.mkdtemp(prefix="feedapp-fanout-"), persist=False) as server:
        client, writer = worker(server, keys, config, repo, "writer")
        _, listening = worker(server, keys, config, repo, "listener")
        clock = 2 * 10**12
        print(f"one post written through to N cached feeds ({ENTRIES} entries each), one listening worker\n")
        print("| followers | ms per post (median) | µs per follower | feeds updated |\n|---|---|---|---|")
        for n in SIZES:
            feeds = cached_feeds(client, keys, n, 10**12)
            samples, updated = [], 0
            for _ in range(5 if n <= 10_000 else 3):
                clock += 1
                started = time.perf_counter()
                updated = writer.writer.write_through(feeds, f"{clock:015d}{ObjectId()}", CAP)
                samples.append((time.perf_counter() - started) * 1000)
            ms = statistics.median(samples)
            print(f"| {n:,} | {ms:.2f} | {ms * 1000 / n:.1f} | {updated:,} |")
            for begin in range(0, n, 10_000):
                client.delete(*feeds[begin:begin + 10_000])
        writer.stop(5)
        listening.stop(5)


if __name__ == "__main__":
    main()
