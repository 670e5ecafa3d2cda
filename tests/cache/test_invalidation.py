"""Pub/sub invalidation against real redis-servers, with the faults a listener must survive.

A write's publish returns once every registered listener has acknowledged, or one trust lease
after PUBLISH: by then a listener that did not acknowledge no longer trusts its L1. An
acknowledgement that did not arrive is never taken for one that did.
"""
import time

import pytest
import redis as redis_lib

from feedapp.cache.invalidation import Listener, Publisher, Registry, Trust
from feedapp.cache.invalidation.publisher import ACKNOWLEDGE, pending_keys
from feedapp.cache.keys import Keys
from feedapp.cache.local import MISSING, LocalCache
from feedapp.infra.embedded_redis import EmbeddedRedis
from feedapp.observability.stats import Stats
from tests.sim.proxy import RedisProxy

from .workers import eventually

KEYS = Keys("t:v1")
CHANNEL, ACKS = KEYS.channel, KEYS.ack_prefix
LEASE = 1.0


class Worker:
    """What one gunicorn worker has for invalidation: an L1, its trust, a listener, a publisher.
    Nothing here is about the store, so the recovery's side of the trust is granted."""

    def __init__(self, connect, name):
        self.client = connect()
        self.stats = Stats(lambda: self.client, KEYS)
        self.local = LocalCache(100, lambda key: 60)
        self.trust = Trust(LEASE)
        self.trust.recovery_renewed((time.monotonic() + 3600, 0))
        registry = Registry(self.client, KEYS.listeners)
        self.listener = Listener(connect, CHANNEL, ACKS, registry, name, self.local, self.trust, self.stats,
                                 ack_client=self.client)
        self.publisher = Publisher(self.client, CHANNEL, ACKS, registry, name, self.stats, LEASE)
        self.listener.start()
        assert self.listener.wait_live(5)

    def put(self, key, value):
        self.local.fill(key, self.local.begin(key), value)

    def stop(self):
        self.listener.stop()
        self.listener.join(3)


@pytest.fixture
def workers(redis_server, redis_client):
    made = [Worker(lambda: redis_lib.Redis.from_url(redis_server.url, socket_timeout=1), f"w{i}") for i in range(3)]
    yield made
    for worker in made:
        worker.stop()


def test_publish_returns_after_every_other_worker_evicted(workers):
    for worker in workers:
        worker.put("profile:1", "old")
        worker.put("feed:1:a", "old")
    workers[0].local.evict(["profile:1"], ["feed:1:"])  # the writer evicts its own L1 itself
    assert workers[0].publisher.publish(["profile:1"], ["feed:1:"]) is True
    for worker in workers:  # no waiting: the acknowledgement means it is done
        assert worker.local.get("profile:1") is MISSING
        assert worker.local.get("feed:1:a") is MISSING
    assert workers[0].stats.pending()["invalidations.acknowledged"] == 2  # the two others


def test_only_the_listener_that_acknowledges_last_wakes_the_writer(workers, redis_client):
    """Each other listener takes itself off the message's pending set; the one that empties it
    pushes the writer's wake-up, so the writer never reads acknowledgements one by one, and
    nothing of the message is left in Redis afterwards."""
    for worker in workers:
        worker.put("k", "old")
    redis_client.config_resetstat()
    assert workers[0].publisher.publish(["k"]) is True
    calls = {name: stat["calls"] for name, stat in redis_client.info("commandstats").items()}
    assert calls.get("cmdstat_srem") == 2  # one acknowledgement per other listener
    assert calls.get("cmdstat_rpush") == 1  # one wake-up
    assert calls.get("cmdstat_blpop", 0) >= 1 and "cmdstat_lrange" not in calls
    assert all(worker.local.get("k") is MISSING for worker in workers[1:])
    assert redis_client.keys(f"{ACKS}*") == []


def test_an_acknowledgement_counts_only_for_the_listener_that_sent_it(workers, redis_client):
    """Another listener's acknowledgement, sent twice, is not the missing one's."""
    late = workers[2]
    late.listener.stop()
    late.listener.join(3)  # still registered (its entry outlives it by up to 10 s), never acknowledges
    redis_client.zadd(KEYS.listeners, {"w2": time.time() * 1000 + 10_000})
    acknowledge = redis_client.register_script(ACKNOWLEDGE)
    original = workers[1].listener._ack

    def twice(origin, seq):
        original(origin, seq)
        acknowledge(keys=pending_keys(ACKS, origin, seq), args=["w1", 10_000])

    workers[1].listener._ack = twice
    started = time.monotonic()
    assert workers[0].publisher.publish(["k"]) is False
    assert time.monotonic() - started >= LEASE * 0.95
    assert workers[0].stats.pending()["invalidations.acknowledged"] == 1  # w1 only


def test_a_stray_subscriber_costs_a_write_nothing(workers, redis_server):
    stray = redis_lib.Redis.from_url(redis_server.url).pubsub()
    stray.subscribe(CHANNEL)  # e.g. an operator's redis-cli SUBSCRIBE: it never acknowledges
    stray.get_message(timeout=1)
    try:
        started = time.monotonic()
        assert workers[0].publisher.publish(["k"]) is True
        assert time.monotonic() - started < LEASE / 2
        assert workers[0].stats.pending()["invalidations.lease_waits"] == 0
    finally:
        stray.close()


def test_an_ack_that_did_not_arrive_is_never_success(redis_server, redis_client):
    """A listener that is alive but slow (its socket delivers late) does not acknowledge in
    time: the write waits out one lease, and by then that worker has stopped trusting its L1."""
    proxy = RedisProxy(str(redis_server.socket_path))
    slow = Worker(lambda: redis_lib.Redis.from_url(proxy.url, socket_timeout=1), "slow")
    writer = Worker(lambda: redis_lib.Redis.from_url(redis_server.url, socket_timeout=1), "writer")
    try:
        slow.put("k", "old")
        proxy.freeze_subscribers(3 * LEASE)
        started = time.monotonic()
        assert writer.publisher.publish(["k"]) is False
        assert time.monotonic() - started >= LEASE * 0.95
        assert not slow.trust.l1()  # "old" is still in its L1, but nobody may read it
        assert writer.stats.pending()["invalidations.lease_waits"] == 1
        assert eventually(lambda: slow.local.get("k") is MISSING, timeout=10)  # applied once it hears
        assert eventually(lambda: slow.listener.live, timeout=10)
    finally:
        slow.stop()
        writer.stop()
        proxy.close()


def test_when_the_acks_cannot_be_read_the_writer_waits_out_the_lease(workers):
    """A Redis Cluster that is down during a failover delivers PUBLISH but refuses the
    acknowledgements' reads (BLPOP)."""
    for worker in workers:
        worker.put("k", "old")
    writer = workers[0]

    def refused(*args, **kwargs):
        raise redis_lib.ConnectionError("test: the acks' node refuses")

    writer.publisher._wait_done = refused
    started = time.monotonic()
    assert writer.publisher.publish(["k"]) is False
    assert time.monotonic() - started >= LEASE * 0.95  # the lease, not an early return
    assert all(worker.local.get("k") is MISSING for worker in workers[1:])
    assert writer.stats.pending()["invalidations.ack_failures"] == 1


def test_an_idle_listener_pings_once_per_interval_and_stays_trusted(workers, redis_client):
    """A listener's trust needs one PING per quarter lease; pinging again on every pong would
    keep an idle worker busy (a third of a core each) and slow every write on the machine."""
    redis_client.config_resetstat()
    time.sleep(LEASE)
    pings = redis_client.info("commandstats").get("cmdstat_ping", {}).get("calls", 0)
    per_listener = 4  # one PING each quarter lease
    assert 0 < pings <= len(workers) * (per_listener + 2)
    assert all(worker.listener.live for worker in workers)


def test_listeners_register_while_subscribed_and_leave_when_they_stop(workers, redis_client):
    registered = {m.decode() for m in redis_client.zrange(KEYS.listeners, 0, -1)}
    assert registered == {"w0", "w1", "w2"}
    workers[2].stop()
    assert eventually(lambda: redis_client.zrange(KEYS.listeners, 0, -1) == [b"w0", b"w1"])
    assert redis_client.pttl(KEYS.listeners) > 0  # every key of ours has a TTL


def test_client_kill_of_the_subscriber_clears_l1_then_resumes(workers, redis_client, caplog):
    worker = workers[0]
    worker.put("k", "v")
    with caplog.at_level("WARNING", logger="feedapp.cache.invalidation.listener"):
        redis_client.client_kill_filter(_type="pubsub")
        assert eventually(lambda: worker.local.get("k") is MISSING)
        assert eventually(lambda: worker.listener.live)
        every = len(workers)
        assert eventually(lambda: sum("resubscribed after" in r.getMessage() for r in caplog.records) >= every)
    lost = [r.getMessage() for r in caplog.records if "lost its subscription" in r.getMessage()]
    assert len(lost) >= every and all("L1 cleared" in m for m in lost)
    assert sum("ConnectionError" in m for m in lost) >= every  # each worker says why
    assert worker.listener.is_alive() and worker.listener.sessions >= 2
    worker.put("k", "v2")  # and invalidation works again on the new subscription
    assert workers[1].publisher.publish(["k"]) is True
    assert worker.local.get("k") is MISSING


def test_redis_restart_clears_l1_and_the_listener_resubscribes(tmp_path):
    server = EmbeddedRedis(tmp_path / "r", persist=False).start()
    worker = Worker(lambda: redis_lib.Redis.from_url(server.url, socket_timeout=1), "solo")
    try:
        worker.put("k", "v")
        server.stop()
        assert eventually(lambda: not worker.listener.live and worker.local.get("k") is MISSING)
        server.start()
        assert eventually(lambda: worker.listener.live, timeout=10)
        assert worker.listener.is_alive()
        worker.put("k", "v")
        another = Publisher(worker.client, CHANNEL, ACKS, Registry(worker.client, KEYS.listeners), "another",
                            worker.stats, LEASE)  # another worker's write
        assert another.publish(["k"]) is True
        assert worker.local.get("k") is MISSING
    finally:
        worker.stop()
        server.stop()


def test_silent_subscriber_socket_is_detected_by_the_health_check(redis_server):
    proxy = RedisProxy(str(redis_server.socket_path))
    worker = Worker(lambda: redis_lib.Redis.from_url(proxy.url, socket_timeout=1), "quiet")
    try:
        worker.put("k", "v")
        frozen_at = time.monotonic()
        proxy.freeze_subscribers(2.0)  # the connection stays open but nothing comes through
        assert eventually(lambda: not worker.listener.live, timeout=3)
        untrusted_after = time.monotonic() - frozen_at
        print(f"\nsilent subscriber untrusted after {untrusted_after * 1000:.0f} ms")
        # At most one lease after the last answered ping (a quarter lease before the freeze).
        assert untrusted_after <= LEASE * 1.1
        assert eventually(lambda: worker.local.get("k") is MISSING)  # the session ends: L1 cleared
        assert eventually(lambda: worker.listener.live, timeout=10)
        assert worker.listener.is_alive()
    finally:
        worker.stop()
        proxy.close()


def test_sequence_gap_clears_l1(workers, redis_client):
    import orjson

    worker = workers[0]
    worker.put("a", 1)
    worker.put("b", 1)
    for seq in (1, 3):  # message 2 of origin "x" never arrives
        redis_client.publish(CHANNEL, orjson.dumps({"origin": "x", "seq": seq, "keys": ["a"], "prefixes": []}))
    assert eventually(lambda: worker.local.get("b") is MISSING)
