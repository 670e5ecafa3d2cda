"""What one post costs to write through to its author's followers' cached feeds, as the
follower count grows 1 → 100,000 (issue 7's cost curve).

The same call the app makes (`TieredCache.write_through`: Lua inserts into the cached feeds,
500 feeds per call, then one invalidation message that a listening worker applies and
acknowledges), against a private redis-server, every follower's feed cached (20 entries).
Medians of a few posts per size. Above FANOUT_LIMIT (1,000 by default) the app stops pushing
and merges the author's timeline at read time instead (services/fanout.py): this curve is why.

    .venv/bin/python -m bench.fanout_curve
"""
import statistics
import tempfile
import time

import redis
from bson import ObjectId

from feedapp.cache.keys import Keys
from feedapp.cache.local import LocalCache
from feedapp.cache.policy import make_policy
from feedapp.cache.postlists import PostList, PostListCodec
from feedapp.cache.remote import RemoteCache
from feedapp.cache.tiered import TieredCache
from feedapp.config import Config
from feedapp.embedded_redis import EmbeddedRedis
from feedapp.invalidation import Listener, Publisher
from feedapp.stats import Stats

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


def main():
    keys = Keys("bench:v1")
    with EmbeddedRedis(tempfile.mkdtemp(prefix="feedapp-fanout-"), persist=False) as server:
        client = redis.Redis.from_url(server.url, socket_timeout=10)
        stats = Stats(lambda: client, keys)
        listener = Listener(lambda: redis.Redis.from_url(server.url, socket_timeout=10), keys.channel,
                            keys.ack_prefix, LocalCache(10_000, lambda key: 60), stats, ack_client=client)
        listener.start()
        assert listener.wait_live(5)
        cache = TieredCache(keys=keys, stats=stats, policy=make_policy(Config()), local=LocalCache(10_000, lambda k: 60),
                            remote=RemoteCache(client), publisher=Publisher(client, keys.channel, keys.ack_prefix,
                                                                            "bench", stats, ack_timeout=5.0))
        clock = 2 * 10**12
        print(f"one post written through to N cached feeds ({ENTRIES} entries each), one listening worker\n")
        print("| followers | ms per post (median) | µs per follower | feeds updated |\n|---|---|---|---|")
        for n in SIZES:
            feeds = cached_feeds(client, keys, n, 10**12)
            samples, updated = [], 0
            for _ in range(5 if n <= 10_000 else 3):
                clock += 1
                started = time.perf_counter()
                updated = cache.write_through(feeds, f"{clock:015d}{ObjectId()}", CAP)
                samples.append((time.perf_counter() - started) * 1000)
            ms = statistics.median(samples)
            print(f"| {n:,} | {ms:.2f} | {ms * 1000 / n:.1f} | {updated:,} |")
            for begin in range(0, n, 10_000):
                client.delete(*feeds[begin:begin + 10_000])
        listener.stop()


if __name__ == "__main__":
    main()
