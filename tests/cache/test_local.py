"""L1: bounded, hard TTL per family, fill guard against evictions during a fill."""
from feedapp.cache.local import MISSING, LocalCache


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(maxsize=100, ttl=10, clock=None):
    return LocalCache(maxsize, lambda key: ttl, timer=clock or FakeClock())


def put(cache, key, value):
    assert cache.fill(key, cache.begin(key), value)


def test_fill_then_get():
    cache = make()
    put(cache, "k", {"a": 1})
    assert cache.get("k") == {"a": 1}
    assert cache.get("other") is MISSING


def test_hard_ttl_is_not_extended_by_reads():
    clock = FakeClock()
    cache = make(ttl=10, clock=clock)
    put(cache, "k", 1)
    for _ in range(9):
        clock.now += 1
        assert cache.get("k") == 1
    clock.now += 1.5
    assert cache.get("k") is MISSING


def test_ttl_per_family():
    clock = FakeClock()
    cache = LocalCache(100, lambda key: 5 if key.startswith("short") else 50, timer=clock)
    put(cache, "short:1", 1)
    put(cache, "long:1", 1)
    clock.now += 6
    assert cache.get("short:1") is MISSING
    assert cache.get("long:1") == 1


def test_bounded_by_maxsize():
    cache = make(maxsize=50)
    for i in range(500):
        put(cache, f"k{i}", i)
    assert len(cache) == 50


def test_fill_started_before_an_eviction_is_dropped():
    cache = make()
    token = cache.begin("k")  # a reader starts loading the old value
    cache.evict(["k"])  # a write evicts the key meanwhile
    assert cache.fill("k", token, "old") is False
    assert cache.get("k") is MISSING


def test_fill_started_before_a_prefix_eviction_or_clear_is_dropped():
    cache = make()
    token = cache.begin("feed:1:a")
    cache.evict(prefixes=["feed:1:"])
    assert not cache.fill("feed:1:a", token, "old")
    token = cache.begin("x")
    cache.clear()
    assert not cache.fill("x", token, "old")


def test_no_token_is_left_behind():
    cache = make()
    for i in range(100):
        token = cache.begin(f"k{i}")
        if i % 2:
            cache.fill(f"k{i}", token, i)
        else:
            cache.abandon(f"k{i}", token)
    assert cache._pending == {}


def test_evict_removes_value_and_counts():
    cache = make()
    put(cache, "a:1", 1)
    put(cache, "a:2", 2)
    put(cache, "b:1", 3)
    assert cache.evict(["b:1", "nope"], ["a:"]) == 3
    assert len(cache) == 0


def test_expired_entries_are_kept_for_stale_if_error_but_evicted_ones_are_not():
    now = [0.0]
    cache = LocalCache(10, lambda key: 5, timer=lambda: now[0])
    for key in ("a", "b", "c"):
        cache.fill(key, cache.begin(key), key.upper())
    now[0] = 6
    # Evicted while expired but not yet purged (nothing touched the cache since): a write's
    # eviction, whose old value must never come back.
    cache.evict(keys=["b"])
    cache.evict(prefixes=["c"])
    assert cache.get("a") is MISSING  # expired: not served as fresh...
    assert cache.stale("a") == "A"  # ...but offered when the store fails
    assert cache.stale("b") is MISSING
    assert cache.stale("c") is MISSING
    cache.fill("a", cache.begin("a"), "A2")  # a fresh value replaces the stale one
    assert cache.get("a") == "A2"
    cache.clear()  # the invalidation stream was lost: nothing old may be trusted
    now[0] = 20
    assert cache.stale("a") is MISSING
