"""The cascade against a real redis-server: two "workers" (each its own L1, listener and
publisher) sharing one Redis, as two gunicorn workers would.

The stale-fill races pause a reader inside its load while another worker writes and
invalidates; afterwards every tier must agree with the store (docs/design.md, rule 4).
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import redis as redis_lib

from feedapp.cache.cascade import TieredCache
from feedapp.cache.invalidation import Eviction, Trust
from feedapp.cache.local import MISSING, LocalCache
from feedapp.cache.policy import make_policy
from feedapp.cache.remote import L2Unavailable
from feedapp.cache.tracing import deepest_tier, start_request_trace
from feedapp.config import Config
from feedapp.observability.stats import Stats

from .workers import KEY, KEYS, eventually, make_worker, shared_store

__all__ = ["KEY", "KEYS", "make_worker"]


@pytest.fixture
def pair(redis_server, redis_client):
    repo = shared_store()
    a, b = make_worker(redis_server.url, "a", repo=repo), make_worker(redis_server.url, "b", repo=repo)
    yield a, b
    # Gone from the channel before the next test: a listener still subscribed would be
    # counted by that test's PUBLISH and acknowledge its messages too.
    for worker in (a, b):
        worker.stop()


class Store:
    """The truth, with a loader that can be paused inside its read."""

    def __init__(self, value):
        self.value = value
        self.reads = 0
        self.inside = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def loader(self):
        self.reads += 1
        value = self.value  # read the store...
        self.inside.set()
        assert self.release.wait(5)  # ...and stall before returning it
        return value

    def write(self, value, worker):
        self.value = value
        worker.invalidate(keys=[KEY])


def read(cache, store):
    start_request_trace()
    value = cache.get_or_load(KEY, store.loader)
    return value, deepest_tier()


def leader_and_waiting_follower(a, b, store):
    """a loads from the store (holding the lease) while b finds the lease and waits."""
    store.release.clear()
    leader = ThreadPoolExecutor(1).submit(read, a, store)
    assert store.inside.wait(5)
    follower = ThreadPoolExecutor(1).submit(read, b, store)
    time.sleep(0.05)
    store.release.set()
    return leader, follower


def test_read_cascade_fills_upward(pair):
    a, b = pair
    store = Store({"name": "v1"})
    assert read(a, store) == ({"name": "v1"}, "L3")
    assert read(a, store) == ({"name": "v1"}, "L1")
    assert read(b, store) == ({"name": "v1"}, "L2")
    assert read(b, store) == ({"name": "v1"}, "L1")
    assert store.reads == 1


def unstated(key, value):
    raise AssertionError(f"L1 had to estimate the size of {key}: the cascade knew it")


def clocked_workers(url, **options):
    """Yields (now, two workers) whose L1 runs on a clock the test moves (60 s TTLs, 5 s
    refresh window); stops them after."""
    now = [1000.0]
    repo = shared_store()
    workers = [make_worker(url, name, repo=repo, l1_clock=lambda: now[0], refresh_window=5, **options)
               for name in ("a", "b")]
    yield now, workers
    for worker in workers:
        worker.stop()


@pytest.fixture
def sized_pair(redis_server, redis_client):
    """Two workers whose L1 refuses to estimate sizes: every fill must state its size."""
    yield from clocked_workers(redis_server.url, l1_sizeof=unstated)


def test_l1_counts_each_value_by_its_l2_encoding(sized_pair, redis_client):
    now, (a, b) = sized_pair
    value = {"name": "v1", "bio": "é" * 50}
    assert read(a, Store(value)) == (value, "L3")  # stated: the codec's output for L2
    encoded = len(redis_client.get(KEY))
    assert a.local.bytes == encoded
    assert read(b, Store(value)) == (value, "L2")  # stated: the payload's length
    assert b.local.bytes == encoded
    posts = {KEYS.post(n): n for n in range(3)}
    b.get_many_or_load(posts, lambda idents: {n: {"n": n} for n in idents})  # from the store
    a.get_many_or_load(posts, lambda idents: {})  # from L2
    assert a.local.bytes == b.local.bytes == encoded + sum(len(redis_client.get(k)) for k in posts)
    a.get_or_load(KEYS.profile("none"), lambda: None)  # "no such document" takes no bytes
    now[0] += 56
    assert read(a, Store(value)) == (value, "L1") and a.tiers.refresh_ahead.run() == 1  # stated: the payload's length
    assert a.local.bytes == b.local.bytes


def test_stale_fill_race_in_l2_and_l1(pair, redis_client):
    a, b = pair
    store = Store({"name": "old"})
    store.release.clear()
    reader = ThreadPoolExecutor(1).submit(read, a, store)
    assert store.inside.wait(5)  # a has read "old" from the store and holds the lease
    store.write({"name": "new"}, b)  # b writes and invalidates while a is paused
    store.release.set()
    assert reader.result(5)[0] == {"name": "old"}  # a's own request saw the older value...
    assert redis_client.get(KEY) is None  # ...but its fill did not land in L2
    assert a.local.get(KEY) is MISSING  # nor in its L1
    assert read(a, store)[0] == {"name": "new"}
    assert read(b, store)[0] == {"name": "new"}
    assert read(a, store) == ({"name": "new"}, "L1")


def test_stale_fill_race_from_l2_into_l1(pair):
    """A reader that got the old value from L2 must not put it in L1 after an invalidation."""
    a, b = pair
    store = Store({"name": "old"})
    read(b, store)  # "old" is in L2
    got_it, go_on = threading.Event(), threading.Event()
    real_get = a.remote.get_many

    def slow_get(keys):
        raws = real_get(keys)
        got_it.set()
        assert go_on.wait(5)
        return raws

    a.remote.get_many = slow_get
    reader = ThreadPoolExecutor(1).submit(read, a, store)
    assert got_it.wait(5)
    store.write({"name": "new"}, b)  # returns once a's listener has evicted (and acked)
    go_on.set()
    assert reader.result(5) == ({"name": "old"}, "L2")
    a.remote.get_many = real_get
    assert a.local.get(KEY) is MISSING
    assert read(a, store)[0] == {"name": "new"}


def test_writer_sees_its_own_write_at_once(pair):
    a, _ = pair
    store = Store({"name": "old"})
    read(a, store)
    read(a, store)
    store.write({"name": "new"}, a)
    assert read(a, store) == ({"name": "new"}, "L3")


def test_single_flight_one_load_for_concurrent_misses_and_nothing_left_behind(pair):
    a, _ = pair
    store = Store({"name": "v"})
    store.release.clear()
    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(read, a, store) for _ in range(20)]
        assert store.inside.wait(5)
        time.sleep(0.1)  # let the others pile up behind the leader
        store.release.set()
        results = [f.result(5) for f in futures]
    assert store.reads == 1
    assert all(value == {"name": "v"} for value, _ in results)
    assert a._flights == {} and a.local._pending == {}


def test_another_workers_lease_makes_a_reader_wait_for_its_fill(pair):
    a, b = pair
    store = Store({"name": "v"})
    leader, follower = leader_and_waiting_follower(a, b, store)
    assert leader.result(5) == ({"name": "v"}, "L3")
    assert follower.result(5) == ({"name": "v"}, "L2")
    assert store.reads == 1
    assert b.stats.pending()["l2.lease_waits"] == 1


def test_absent_documents_are_cached_briefly(pair, redis_client):
    a, b = pair
    store = Store(None)
    assert read(a, store) == (None, "L3")
    assert read(a, store) == (None, "L1")
    assert read(b, store) == (None, "L2")
    assert store.reads == 1
    assert 0 < redis_client.pttl(KEY) <= 10_000


def test_l1_is_bypassed_while_the_listener_is_down_and_l2_still_serves(redis_server, redis_client):
    offline = threading.Event()
    a = make_worker(redis_server.url, "a", offline=offline)
    try:
        store = Store({"name": "v"})
        read(a, store)
        assert read(a, store)[1] == "L1"
        offline.set()
        redis_client.client_kill_filter(_type="pubsub")
        assert eventually(lambda: not a.listener.live) and a.local.get(KEY) is MISSING
        for _ in range(3):  # nothing is served from, or stored in, L1 meanwhile
            assert read(a, store) == ({"name": "v"}, "L2")
        assert len(a.local) == 0
        offline.clear()
        assert a.listener.wait_live(5) and a.listener.is_alive()
        read(a, store)
        assert read(a, store)[1] == "L1"
    finally:
        a.stop()


def test_redis_down_reads_fall_through_and_writes_still_succeed(redis_server):
    dead = f"unix://{redis_server.socket_path}.gone"
    cache = make_worker(dead, "a", mode="l2", wait=False)
    try:
        store = Store({"name": "v"})
        started = time.monotonic()
        for _ in range(20):
            assert read(cache, store) == ({"name": "v"}, "L3")
        store.write({"name": "w"}, cache)  # no exception
        assert read(cache, store) == ({"name": "w"}, "L3")
        assert time.monotonic() - started < 4  # the breaker kept us from waiting on Redis each time
    finally:
        cache.stop()


def test_invalidation_is_attempted_even_while_the_breaker_is_open(pair, redis_client):
    a, b = pair
    store = Store({"name": "old"})
    read(b, store)
    a.remote.breaker.failure()  # one hiccup: reads skip Redis for a while
    assert a.remote.breaker.is_open
    store.write({"name": "new"}, a)
    assert redis_client.get(KEY) is None
    assert read(b, store)[0] == {"name": "new"}


def test_a_failed_l2_delete_stops_every_worker_trusting_until_it_is_applied(pair, redis_client):
    a, b = pair
    store = Store({"name": "old"})
    read(b, store)
    assert read(b, store) == ({"name": "old"}, "L1")
    real_delete = a.remote.delete

    def failing_delete(keys):
        a.remote.delete = real_delete
        raise L2Unavailable("test: redis hiccup")

    a.remote.delete = failing_delete
    store.write({"name": "new"}, a)  # the write succeeds; its L2 delete did not
    assert read(a, store)[0] == {"name": "new"}  # the writer does not read L2 meanwhile
    assert read(b, store)[0] == {"name": "new"}  # nor does b: the outbox told its recovery
    assert eventually(lambda: a.recovery.pending() == [] and a.trust.l1() and b.trust.l1())  # delivered
    assert redis_client.get(KEY) in (None, b'{"name":"new"}')  # gone, or refilled since
    assert read(a, store)[0] == read(b, store)[0] == {"name": "new"}


def test_a_failed_load_gives_its_lease_back(pair, redis_client):
    a, b = pair

    def broken():
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        a.get_or_load(KEY, broken)
    assert not redis_client.exists(KEY + ":lease")
    store = Store({"name": "v"})
    started = time.monotonic()
    assert read(b, store) == ({"name": "v"}, "L3")
    assert time.monotonic() - started < 0.3  # b did not wait out a dead lease


def test_an_unreadable_l2_value_is_a_miss(pair, redis_client):
    a, _ = pair
    redis_client.set(KEY, b"\xff not json")
    assert read(a, Store({"name": "v"})) == ({"name": "v"}, "L3")


def test_each_l2_lookup_is_counted_once(pair):
    a, b = pair
    store = Store({"name": "v"})
    leader, follower = leader_and_waiting_follower(a, b, store)
    leader.result(5), follower.result(5)
    counts = b.stats.pending()
    assert counts["l2.hits.profile"] == 1 and counts["l2.misses.profile"] == 0


def test_an_invalidation_redis_missed_reaches_every_worker_through_the_outbox(redis_server, redis_client):
    """Worker a writes while Redis refuses it, then dies. Worker b stays subscribed the whole
    time: the outbox (in the store) stops it trusting L1 and L2 until the eviction is delivered."""
    repo = shared_store()
    a, b = make_worker(redis_server.url, "a", repo=repo), make_worker(redis_server.url, "b", repo=repo)
    try:
        store = Store({"name": "old"})
        read(b, store)
        assert read(b, store) == ({"name": "old"}, "L1")

        def refused(*args, **kwargs):
            raise L2Unavailable("test: Redis refuses the writer")

        def unreachable(*args, **kwargs):
            raise redis_lib.ConnectionError("test: Redis refuses the writer")

        a.remote.delete = refused  # a's invalidation cannot reach Redis...
        a.tiers.writer._publisher.publish = unreachable  # ...nor can its publish
        a.stop(wait=0)  # a dies right after, before its recovery could deliver anything
        store.value = {"name": "new"}
        started = time.monotonic()
        a.invalidate(keys=[KEY])
        assert time.monotonic() - started >= a.trust.recovery_lease * 0.9  # it waited out one recovery lease
        assert read(b, store)[0] == {"name": "new"}  # b no longer trusts the L1 and L2 it has
        assert eventually(lambda: repo.db.cache_outbox.count_documents({}) == 0 and b.trust.l1())
        assert redis_client.get(KEY) in (None, b'{"name":"new"}')  # delivered (and refilled since)
        assert read(b, store)[0] == {"name": "new"}
        assert read(b, store) == ({"name": "new"}, "L1")
    finally:
        a.stop()
        b.stop()


def test_the_outbox_entry_stays_and_trust_stays_off_while_redis_refuses_it(redis_server, redis_client):
    a = make_worker(redis_server.url, "a")
    try:
        def refused(*args, **kwargs):
            raise L2Unavailable("test: deletes fail")

        a.remote.delete = refused
        a.recovery.record(Eviction([KEY], []))
        a.recovery.run()
        assert not a.trust.l2() and not a.trust.l1()
        assert len(a.recovery.pending()) == 1 and a.recovery.repo.db.cache_outbox.count_documents({}) == 1
        del a.remote.delete  # Redis takes deletes again
        assert eventually(lambda: a.trust.l1() and a.recovery.pending() == [])
        assert a.recovery.repo.db.cache_outbox.count_documents({}) == 0
    finally:
        a.stop()


def test_stale_if_error_serves_an_expired_l1_value_only_while_the_store_fails():
    from pymongo.errors import ServerSelectionTimeoutError

    now = [0.0]
    local = LocalCache(10, lambda key: 5, timer=lambda: now[0])
    trust = Trust(lease=3600, stream=False)  # no listener, no Redis here: trusted for the test
    trust.recovery_renewed(trust.check_begins())
    cache = TieredCache(keys=KEYS, stats=Stats(lambda: None, KEYS), policy=make_policy(Config()),
                        trust=trust, local=local, remote=None)

    def down():
        raise ServerSelectionTimeoutError("test: the store is down")

    assert cache.get_or_load(KEY, lambda: {"name": "v"}) == {"name": "v"}
    now[0] = 6  # expired in L1
    start_request_trace()
    assert cache.get_or_load(KEY, down) == {"name": "v"}
    assert deepest_tier() == "L1" and cache.stats.counted()["l1.stale_if_error.profile"] == 1
    assert cache.get_or_load(KEY, lambda: {"name": "w"}) == {"name": "w"}  # store back: fresh again
    cache.evict_local([KEY])  # a write: the old value must never be offered again
    now[0] = 20
    with pytest.raises(ServerSelectionTimeoutError):
        cache.get_or_load(KEY, down)


# --- refresh-ahead ----------------------------------------------------------------------------

@pytest.fixture
def clocked_pair(redis_server, redis_client):
    """Two workers whose L1 runs on a clock the test moves (60 s TTLs, 5 s refresh window)."""
    yield from clocked_workers(redis_server.url)


def test_refresh_ahead_keeps_a_read_key_in_l1_past_its_ttl(clocked_pair):
    now, (a, _) = clocked_pair
    store = Store({"name": "v1"})
    assert read(a, store) == ({"name": "v1"}, "L3")
    now[0] += 56  # 4 s left
    assert read(a, store) == ({"name": "v1"}, "L1")
    assert a.tiers.refresh_ahead.run() == 1
    now[0] += 30  # past the first fill's TTL, within the refreshed one
    assert read(a, store) == ({"name": "v1"}, "L1")
    assert store.reads == 1 and a.stats.counted()["l1.refreshes"] == 1


def test_a_refresh_that_finds_the_same_value_keeps_the_very_object(clocked_pair, redis_client):
    """What was made from it (a kept answer: TieredCache.still_holds) stays valid; a value
    that differs replaces it."""
    now, (a, _) = clocked_pair
    store = Store({"name": "v1"})
    _due(now, a, store)
    held = a.local.get(KEY)
    assert a.tiers.refresh_ahead.run() == 1
    now[0] += 30  # past the first fill's TTL
    assert read(a, store) == ({"name": "v1"}, "L1") and a.local.get(KEY) is held
    now[0] += 26  # 4 s left of the refreshed entry
    assert read(a, store)[1] == "L1"
    redis_client.set(KEY, orjson.dumps({"name": "v2"}), keepttl=True)  # as a lost invalidation would leave it
    assert a.tiers.refresh_ahead.run() == 1
    assert a.local.get(KEY) == {"name": "v2"}


def test_refresh_ahead_leaves_unread_keys_to_expire(clocked_pair):
    now, (a, _) = clocked_pair
    store = Store({"name": "v1"})
    assert read(a, store)[1] == "L3"
    now[0] += 56
    assert a.tiers.refresh_ahead.run() == 0
    now[0] += 5
    assert read(a, store) == ({"name": "v1"}, "L2")


def test_an_invalidation_during_a_refresh_wins(clocked_pair):
    now, (a, b) = clocked_pair
    store = Store({"name": "v1"})
    assert read(a, store)[1] == "L3"
    now[0] += 56
    assert read(a, store)[1] == "L1"
    fetch = a.remote.get_many

    def fetch_then_write(keys):
        old = fetch(keys)  # the refresh has read v1 from L2...
        store.value = {"name": "v2"}  # ...when another worker writes and invalidates
        b.invalidate(keys=[KEY])
        return old

    a.remote.get_many = fetch_then_write
    assert a.tiers.refresh_ahead.run() == 0  # v1 must not be stored after v2's invalidation
    a.remote.get_many = fetch
    assert a.local.get(KEY) is MISSING
    assert read(a, store) == ({"name": "v2"}, "L3")


def _due(now, worker, store):
    """KEY read, filled and read again 4 s before its TTL ends: due for a refresh."""
    assert read(worker, store)[1] == "L3"
    now[0] += 56
    assert read(worker, store)[1] == "L1"


def _no_l2_reads(worker):
    def refuse(keys):
        raise AssertionError(f"L2 read while it must not be: {keys}")

    worker.remote.get_many = refuse


def test_refresh_ahead_waits_while_the_listener_is_down(clocked_pair):
    now, (a, _) = clocked_pair
    _due(now, a, Store({"name": "v1"}))
    a.listener.stop()
    a.listener.join(5)  # its session ended: the stream no longer vouches for L1
    _no_l2_reads(a)
    assert a.tiers.refresh_ahead.run() == 0


def test_refresh_ahead_waits_while_an_invalidation_is_not_applied(clocked_pair):
    now, (a, _) = clocked_pair
    _due(now, a, Store({"name": "v1"}))
    a.remote.delete = lambda keys: (_ for _ in ()).throw(L2Unavailable("test: deletes fail"))
    a.recovery.record(Eviction([KEYS.profile("7")], []))  # a write whose L2 delete still fails
    _no_l2_reads(a)
    assert a.tiers.refresh_ahead.run() == 0


def test_a_refresh_leaves_a_readers_fill_in_flight_alone(clocked_pair):
    now, (a, _) = clocked_pair
    store = Store({"name": "v1"})
    _due(now, a, store)
    reader = a.local.begin(KEY)  # a reader is loading KEY (e.g. after a miss in another thread)
    assert a.tiers.refresh_ahead.run() == 1
    assert a.local.fill(KEY, reader, {"name": "v1"})  # its token is still good
    assert a.local.get(KEY) == {"name": "v1"}


def test_a_hung_store_keeps_the_trust_of_the_last_reading(redis_server, redis_client):
    """The outbox read of a paused MongoDB does not return for seconds: that reads as "cannot
    be read" after a quarter recovery lease, so cached reads go on (docs/design.md, rule 9)."""
    a = make_worker(redis_server.url, "a")
    try:
        store = Store({"name": "v"})
        read(a, store)
        outbox = a.recovery._outbox
        hung = threading.Event()
        real_pending = outbox.pending

        def paused(*args, **kwargs):
            hung.wait(10)
            return real_pending(*args, **kwargs)

        outbox.pending = paused
        deadline = time.monotonic() + 3 * a.trust.lease
        while time.monotonic() < deadline:  # three leases with the store hung: never untrusted
            assert a.trust.l2() and a.trust.l1()
            assert read(a, store) == ({"name": "v"}, "L1")
            time.sleep(0.02)
        hung.set()
        outbox.pending = real_pending
    finally:
        a.stop()


def test_an_eviction_in_the_outbox_while_the_store_hangs_keeps_trust_off(redis_server, redis_client):
    """While the store cannot be read, what its last reading found is what counts: an eviction
    some other worker left in the outbox keeps this worker untrusted."""
    repo = shared_store()
    a, b = make_worker(redis_server.url, "a", repo=repo), make_worker(redis_server.url, "b", repo=repo)
    try:
        def refused(*args, **kwargs):
            raise L2Unavailable("test: deletes fail")

        a.remote.delete = b.remote.delete = refused  # nobody can deliver it for now
        a.recovery.record(Eviction([KEY], []))
        assert eventually(lambda: not b.trust.l2())  # b read it in the outbox
        hung = threading.Event()
        real_pending = b.recovery._outbox.pending
        b.recovery._outbox.pending = lambda *args, **kwargs: hung.wait(10) and real_pending(*args, **kwargs)
        time.sleep(3 * b.trust.recovery_lease)
        assert not b.trust.l2() and not b.trust.l1()
        hung.set()
    finally:
        a.stop()
        b.stop()
