"""The cascade, the stale-fill races and invalidation with acknowledgements on a real Redis
Cluster: tests of tests/cache/test_tiered.py run here against the cluster (conftest.py gives
them the cluster as `redis_server` / `redis_client`), plus the stats counters' transaction."""
import time

import pytest
import redis

from feedapp.cache.keys import Keys
from feedapp.cache.local import MISSING
from feedapp.observability.stats import Stats
from tests.cache.test_tiered import (  # noqa: F401 - the same tests, on the cluster
    KEYS,
    pair,
    test_a_failed_l2_delete_stops_every_worker_trusting_until_it_is_applied,
    test_a_failed_load_gives_its_lease_back,
    test_an_invalidation_redis_missed_reaches_every_worker_through_the_outbox,
    test_another_workers_lease_makes_a_reader_wait_for_its_fill,
    test_read_cascade_fills_upward,
    test_stale_fill_race_from_l2_into_l1,
    test_stale_fill_race_in_l2_and_l1,
    test_writer_sees_its_own_write_at_once,
)
from tests.e2e.deployment import free_port as unused_port


def test_every_listener_subscribes_where_the_publisher_publishes_so_all_acks_are_awaited(pair, redis_client):
    a, b = pair
    channel_master = redis_client.get_node_from_key(KEYS.channel).name
    ack_key = f"{KEYS.ack_prefix}x:1"
    assert redis_client.get_node_from_key(ack_key).name == channel_master  # acks share its slot
    assert redis_client.get_node_from_key(KEYS.listeners).name == channel_master  # so is the registry
    before = a.stats.pending()["invalidations.acknowledged"]
    assert a.tiers.publisher.publish([KEYS.profile("7")]) is True
    assert a.stats.pending()["invalidations.acknowledged"] - before == 1  # b's listener (a evicts itself)


def test_stats_flush_is_one_transaction_on_a_cluster(redis_client):
    keys = Keys("c:v1")
    assert redis_client.keyslot(keys.stats()) == redis_client.keyslot(keys.stats_workers())
    stats = Stats(lambda: redis_client, keys)
    stats.count("l1.hits.profile", 3)
    stats.flush()
    totals = stats.totals()
    assert totals["counters"]["l1.hits.profile"] == 3 and totals["workers"] == 1


@pytest.fixture
def free_port():
    return unused_port()


def test_a_publish_the_channels_master_does_not_take_goes_out_through_another_node(pair, free_port):
    """A writer whose view of the cluster predates a failover publishes to a node that is
    gone; the listeners already moved to the new master must still evict."""
    from redis.cluster import ClusterNode

    a, b = pair
    key = KEYS.profile("9")
    b.local.fill(key, b.local.begin(key), "old")
    client = a.client

    def gone(*args, **kwargs):
        raise redis.ConnectionError("test: the node this writer knows as the channel's master is gone")

    client.get_node_from_key = lambda *args, **kwargs: ClusterNode("127.0.0.1", free_port)  # nobody there
    client.pipeline = gone  # nor does the script that reads the registry get through
    try:
        started = time.monotonic()
        assert a.tiers.publisher.publish([key]) is False  # whom to wait for is unknown...
        assert time.monotonic() - started >= a.trust.lease * 0.9  # ...so it waited the whole lease
    finally:
        del client.get_node_from_key, client.pipeline
    assert b.local.get(key) is MISSING
    assert a.stats.pending()["invalidations.receivers_unknown"] == 1
