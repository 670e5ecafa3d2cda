"""What an invalidation costs the writer on a cluster, next to a single Redis: four in-process
"workers" (L1, listener, publisher each), 300 publishes, each waiting for every other
listener's ack. Also the price of the alternative we did not take: asking every node for PUBSUB NUMSUB
before each publish. Figures are printed (`-s`); the assertions are that every publish was
acknowledged by the three other listeners."""
import statistics
import time

import pytest
from redis.cluster import RedisCluster

from feedapp.infra.embedded_redis import EmbeddedRedis
from tests.cache.test_tiered import KEYS, make_worker

pytestmark = pytest.mark.slow

PUBLISHES = 300


def publish_latencies_ms(url) -> list:
    workers = [make_worker(url, f"w{i}") for i in range(4)]
    try:
        writer = workers[0]
        before = writer.stats.pending()["invalidations.acknowledged"]
        times = []
        for n in range(PUBLISHES):
            started = time.perf_counter()
            assert writer.tiers.publisher.publish([KEYS.profile(str(n))]) is True
            times.append((time.perf_counter() - started) * 1000)
        assert writer.stats.pending()["invalidations.acknowledged"] - before == 3 * PUBLISHES
        return times
    finally:
        for worker in workers:
            worker.stop()


def summary(times) -> dict:
    times = sorted(times)
    return {"p50_ms": round(statistics.median(times), 3), "p99_ms": round(times[int(0.99 * len(times))], 3)}


def test_publish_cost_on_a_cluster_and_on_one_redis(tmp_path, redis_cluster, cluster_client):
    with EmbeddedRedis(tmp_path / "single", persist=False) as single_redis:
        single = summary(publish_latencies_ms(single_redis.url))
    cluster = summary(publish_latencies_ms(redis_cluster.url))
    numsub = []
    for _ in range(100):
        started = time.perf_counter()
        cluster_client.pubsub_numsub(KEYS.channel, target_nodes=RedisCluster.ALL_NODES)
        numsub.append((time.perf_counter() - started) * 1000)
    print(f"\npublish + 3 acks, single Redis: {single}; Redis Cluster: {cluster}; "
          f"PUBSUB NUMSUB on all 6 nodes (the alternative, per publish): {summary(numsub)}")
