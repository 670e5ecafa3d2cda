"""A failover that leaves the old master running (CLUSTER FAILOVER on its replica, as for
maintenance): listeners subscribed on it still receive every PUBLISH (a cluster forwards it
to every node), but the publisher now publishes on the new master, whose reply does not
count them. Each listener checks that its node still serves the channel's slot and
resubscribes on the new master, so the publisher waits for every listener's ack again."""
import time

import pytest
import redis

from feedapp.cache.keys import Keys
from tests.cache.test_tiered import KEYS, make_worker

pytestmark = pytest.mark.slow


def test_listeners_follow_the_channel_to_its_new_master(own_cluster):
    workers = [make_worker(own_cluster.url, name) for name in ("a", "b")]
    try:
        old = own_cluster.master_of(KEYS.channel)
        with redis.Redis(port=old) as client:
            replica = int(client.execute_command("ROLE")[2][0][1])
        with redis.Redis(port=replica) as client:
            client.execute_command("CLUSTER FAILOVER")
        deadline = time.monotonic() + 30
        while own_cluster.master_of(KEYS.channel) != replica and time.monotonic() < deadline:
            time.sleep(0.05)
        assert own_cluster.master_of(KEYS.channel) == replica
        own_cluster.wait_ok()
        with redis.Redis(port=replica) as client:
            while client.pubsub_numsub(KEYS.channel)[0][1] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # the listeners notice within their node check interval (1 s)
            assert client.pubsub_numsub(KEYS.channel)[0][1] == 2
        with redis.Redis(port=old) as client:
            assert client.pubsub_numsub(KEYS.channel)[0][1] == 0
        a = workers[0]
        for worker in workers:
            assert worker.listener.wait_live(10)
        before = a.stats.pending()["invalidations.acknowledged"]
        assert a.tiers.publisher.publish([Keys("t:v1").profile("1")]) is True
        assert a.stats.pending()["invalidations.acknowledged"] - before == 1  # b's (a evicts itself)
    finally:
        for worker in workers:
            worker.stop()
