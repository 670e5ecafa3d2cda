"""Single-flight in TieredCache never hands a read a value loaded before a write it follows.

A load in flight when a write evicts its key may carry the old value; a reader that misses
L1 after that eviction (after the write returned) must load anew instead of joining it, and
the old value must not end up in L1. No Redis: L1 and the loader are enough.
"""
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from feedapp.cache.cascade import TieredCache
from feedapp.cache.invalidation import Trust
from feedapp.cache.keys import Keys
from feedapp.cache.local import MISSING, LocalCache
from feedapp.cache.policy import make_policy
from feedapp.config import Config

KEYS = Keys("t:v1")
KEY = KEYS.profile("42")


class Counting:
    def count(self, name, amount=1):
        pass


class Store:
    def __init__(self, value):
        self.value = value
        self.reads = 0
        self.inside = threading.Event()
        self.release = threading.Event()

    def paused_loader(self):
        self.reads += 1
        value = self.value  # read the store...
        self.inside.set()
        assert self.release.wait(5)  # ...and stall before returning it
        return value

    def loader(self):
        self.reads += 1
        return self.value


def make_cache():
    trust = Trust(lease=3600, stream=False)  # no listener here: trusted for the test's length
    trust.recovery_renewed(trust.check_begins())
    return TieredCache(keys=KEYS, stats=Counting(), policy=make_policy(Config()), trust=trust,
                       local=LocalCache(100, lambda key: 60))


def test_a_read_after_a_write_does_not_join_a_load_begun_before_it():
    cache, store = make_cache(), Store("old")
    with ThreadPoolExecutor(2) as pool:
        before = pool.submit(cache.get_or_load, KEY, store.paused_loader)
        assert store.inside.wait(5)  # a reader has read "old" and is still in flight
        store.value = "new"
        cache.evict_local([KEY])  # the write commits and evicts this worker's L1; it has returned
        after = pool.submit(cache.get_or_load, KEY, store.loader)
        wait([after], timeout=2)  # a load of its own ends at once; a joined one waits for "old"
        store.release.set()
        assert after.result(5) == "new"
        assert before.result(5) == "old"  # it started before the write: either value is fine
    assert cache.local.get(KEY) == "new"
    assert cache.get_or_load(KEY, store.loader) == "new"
    assert cache._flights == {} and cache.local._pending == {}


def test_concurrent_misses_without_a_write_still_share_one_load():
    cache, store = make_cache(), Store("v")
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(cache.get_or_load, KEY, store.paused_loader) for _ in range(10)]
        assert store.inside.wait(5)
        threading.Event().wait(0.1)  # let the others pile up behind the first
        store.release.set()
        assert [f.result(5) for f in futures] == ["v"] * 10
    assert store.reads == 1
    assert cache.local.get(KEY) == "v"
    assert cache._flights == {} and cache.local._pending == {}


def test_an_eviction_during_a_shared_load_keeps_its_value_out_of_l1():
    cache, store = make_cache(), Store("old")
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(cache.get_or_load, KEY, store.paused_loader)
        assert store.inside.wait(5)
        joined = pool.submit(cache.get_or_load, KEY, store.loader)  # no write yet: joins the load
        threading.Event().wait(0.05)
        cache.local.evict([KEY])  # another worker's write is applied here
        store.release.set()
        assert first.result(5) == "old" and joined.result(5) == "old"
    assert cache.local.get(KEY) is MISSING
