"""Why cached feeds are fixed-width strings updated by Lua, measured against a sorted set.

Both designs keep the newest CAP post ids of 1,000 feeds in Redis. Measured side by side in one
run on one private redis-server: the write-through of one new post to all 1,000 feeds (one
round trip each way), and one reader fetching one feed into Python.

    .venv/bin/python -m bench.postlist_choice
"""
import statistics
import tempfile
import time

import redis
from bson import ObjectId

from feedapp.cache.postlists import PostList, PostListCodec
from feedapp.cache.remote import RemoteCache
from feedapp.infra.embedded_redis import EmbeddedRedis

CAP, FEEDS, ROUNDS = 200, 1000, 15


def entries(n, start):
    return tuple(f"{start - i:015d}{ObjectId()}" for i in range(n))


def median_ms(fn, rounds=ROUNDS):
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main():
    with EmbeddedRedis(tempfile.mkdtemp(), persist=False) as server:
        r = redis.Redis.from_url(server.url)
        remote = RemoteCache(r)
        base = entries(CAP, 10**12)
        strings = [f"s:{i}" for i in range(FEEDS)]
        zsets = [f"z:{i}" for i in range(FEEDS)]
        with r.pipeline(transaction=False) as pipe:
            for s_key, z_key in zip(strings, zsets):
                pipe.set(s_key, PostListCodec.encode(PostList(base, False)), ex=600)
                pipe.zadd(z_key, {e[15:]: int(e[:15]) for e in base})
                pipe.expire(z_key, 600)
            pipe.execute()
        clock = [2 * 10**12]

        def lua_write():
            clock[0] += 1
            remote.insert_entry(strings, f"{clock[0]:015d}{ObjectId()}", CAP)

        def zset_write():
            clock[0] += 1
            member = str(ObjectId())
            with r.pipeline(transaction=False) as pipe:
                for key in zsets:  # ZADD XX-like guard needs EXISTS first; count it generously
                    pipe.zadd(key, {member: clock[0]})
                    pipe.zremrangebyrank(key, 0, -CAP - 1)
                pipe.execute()

        read_string = lambda: PostListCodec.decode(r.get(strings[0]))  # noqa: E731
        read_zset = lambda: r.zrevrange(zsets[0], 0, CAP - 1, withscores=True)  # noqa: E731
        print(f"{FEEDS} cached feeds of {CAP} entries; medians of {ROUNDS} rounds\n")
        print("| operation | string + Lua | sorted set | ratio |\n|---|---|---|---|")
        w1, w2 = median_ms(lua_write), median_ms(zset_write)
        print(f"| write one post through to {FEEDS} feeds (ms) | {w1:.2f} | {w2:.2f} | {w2 / w1:.2f}× |")
        r1, r2 = median_ms(read_string, 2000), median_ms(read_zset, 2000)
        print(f"| read one feed into Python (ms) | {r1:.3f} | {r2:.3f} | {r2 / r1:.2f}× |")
        m1 = r.memory_usage(strings[0])
        m2 = r.memory_usage(zsets[0])
        print(f"| memory per feed (bytes) | {m1} | {m2} | {m2 / m1:.2f}× |")


if __name__ == "__main__":
    main()
