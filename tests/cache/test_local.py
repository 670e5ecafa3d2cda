"""L1: bounded, hard TTL per family, fill guard against evictions during a fill."""
import threading

from feedapp.cache.local import MISSING, READS_NOTED, LocalCache


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


def test_a_read_keeps_its_entry_among_the_most_recently_used():
    cache = make(maxsize=3)
    for key in "abc":
        put(cache, key, key.upper())
    assert cache.get("a") == "A"  # a: the most recently used now, b the least
    put(cache, "d", "D")
    assert [cache.get(key) for key in "abcd"] == ["A", MISSING, "C", "D"]


def test_reads_between_two_stores_take_bounded_memory():
    cache = make()
    put(cache, "k", "v")
    for _ in range(3 * READS_NOTED):
        cache.get("k")
    assert len(cache._reads) == READS_NOTED
    put(cache, "other", "w")
    assert len(cache._reads) == 0


def test_a_read_does_not_wait_for_the_lock():
    """A hit never queues behind a writer holding the lock (an eviction by prefix, a store)."""
    cache = make()
    put(cache, "k", "v")
    put(cache, "gone", "x")
    seen = []
    with cache._lock:
        reader = threading.Thread(target=lambda: seen.extend([cache.get("k"), cache.get("nothing")]))
        reader.start()
        reader.join(2)
        assert seen == ["v", MISSING]
    cache.evict(["gone"])
    assert cache.get("gone") is MISSING


def test_a_read_never_returns_a_value_evicted_before_it_began():
    """Readers without the lock against a writer that fills and evicts version after version:
    once evict() has returned for version n, no read that starts after that returns n."""
    cache = make(maxsize=10, clock=lambda: 0.0)
    evicted = [-1]  # the newest version whose eviction has returned
    stop, stale = threading.Event(), []

    def write():
        for version in range(20_000):
            put(cache, "k", version)
            put(cache, f"other{version % 20}", version)  # stores that drain the reads and push LRU
            cache.evict(["k"])
            evicted[0] = version
        stop.set()

    def read():
        while not stop.is_set():
            floor = evicted[0]
            value = cache.get("k")
            if value is not MISSING and value <= floor:
                stale.append((value, floor))

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert stop.is_set() and not stale


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


def test_an_entry_that_expires_during_its_eviction_is_never_offered_as_stale():
    """The clock moves between the eviction's purge of what has expired and its removal of
    the key: the entry expires in that gap, and must still go, not into the stash."""
    now, step = [1000.0], [0.0]

    def clock():
        now[0] += step[0]
        return now[0]

    cache = LocalCache(10, lambda key: 10, timer=clock)
    put(cache, "k", "written over")
    now[0], step[0] = 1008.5, 1.0  # each reading of the clock from here on is one second later
    cache.evict(keys=["k"])
    assert cache.stale("k") is MISSING
    step[0] = 0.0
    put(cache, "page:1", "written over")
    now[0], step[0] = now[0] + 8.5, 1.0
    cache.evict(prefixes=["page:"])
    assert cache.stale("page:1") is MISSING


# --- composed entries (a page composed from cached parts) ------------------------------------

def compose(cache, key, value, parts):
    return cache.fill_composed(key, value, parts, cache.epoch())


def test_evicting_any_part_evicts_the_composed_entry():
    for evicted in ("feed:1", "post:a", "profile:9"):
        cache = make()
        for part in ("feed:1", "post:a", "profile:9"):
            put(cache, part, part)
        assert compose(cache, "page:feed:1", "composed", ["feed:1", "post:a", "profile:9"])
        assert cache.get("page:feed:1") == "composed"
        cache.evict([evicted])
        assert cache.get("page:feed:1") is MISSING, evicted


def test_a_composed_entry_is_refused_when_anything_was_evicted_while_it_was_built():
    cache = make()
    put(cache, "post:a", 1)
    epoch = cache.epoch()
    cache.evict(["post:a"])  # a write to a part, between reading it and storing the page
    assert not cache.fill_composed("page:x", "built from the old post:a", ["post:a"], epoch)
    assert cache.get("page:x") is MISSING
    epoch = cache.epoch()
    cache.clear()
    assert not cache.fill_composed("page:x", "v", ["post:a"], epoch)


def test_a_prefix_eviction_reaches_composed_entries_of_parts_that_already_expired():
    clock = FakeClock()
    cache = LocalCache(100, lambda key: 5 if key.startswith("post:") else 60, timer=clock)
    put(cache, "post:a", 1)
    assert compose(cache, "page:x", "v", ["post:a"])
    clock.now += 10  # post:a expired from L1; the page (longer TTL here) did not
    assert cache.get("post:a") is MISSING and cache.get("page:x") == "v"
    cache.evict(prefixes=["post:"])
    assert cache.get("page:x") is MISSING
    put(cache, "post:b", 2)
    assert compose(cache, "page:y", "w", ["post:b"])
    clock.now += 10
    cache.evict(["post:b"])  # and so does a key eviction
    assert cache.get("page:y") is MISSING


def test_the_dependency_index_stays_bounded():
    cache = make(maxsize=10)
    for i in range(500):
        put(cache, f"part:{i}", i)
        assert compose(cache, f"page:{i}", i, [f"part:{i}", f"other:{i}"])
    assert len(cache) <= 10
    assert len(cache._dependents) <= 4 * 10 + 2


def test_the_dependency_index_stays_near_what_l1_holds_when_bytes_bound_it():
    """L1_MAXSIZE far above what the byte budget lets L1 hold: the index follows the budget."""
    cache = LocalCache(1_000_000, lambda key: 10, timer=FakeClock(), max_bytes=2**20)
    for i in range(20_000):
        put(cache, f"part:{i}", "x" * 1000)
        compose(cache, f"page:{i}", "y" * 1000, [f"part:{i}", f"other:{i}"])
    assert len(cache) < 1100  # ~1 MiB of ~1 kB entries
    assert len(cache._dependents) <= 4096


# --- refresh-ahead candidates ---------------------------------------------------------------

def make_refreshing(clock, ttl=60, window=5):
    return LocalCache(100, lambda key: ttl, timer=clock, refresh_window=window)


def test_read_entries_expiring_within_the_window_are_due_once_per_read():
    clock = FakeClock()
    cache = make_refreshing(clock)
    put(cache, "read", 1)
    put(cache, "unread", 2)
    assert cache.get("read") == 1
    clock.now += 50
    assert cache.expiring() == []  # 10 s left: not yet within the 5 s window
    clock.now += 6
    assert cache.expiring() == ["read"]  # 4 s left, read since its fill; "unread" never read
    assert cache.expiring() == []  # handed out once; a read makes it due again
    assert cache.get("read") == 1
    assert cache.expiring() == ["read"]


def test_evicted_expired_composed_and_short_lived_entries_are_never_due():
    clock = FakeClock()
    cache = make_refreshing(clock)
    for key in ("evicted", "expired", "part"):
        put(cache, key, key)
        assert cache.get(key) == key
    assert cache.fill_composed("page", "composed", ["part"], cache.epoch())
    assert cache.get("page") == "composed"
    cache.evict(["evicted"])
    clock.now += 56
    assert cache.expiring() == ["expired", "part"]
    assert cache.get("expired") == "expired"
    clock.now += 5  # past its TTL: gone, nothing left to refresh
    assert cache.expiring() == []
    short = LocalCache(100, lambda key: 10, timer=clock, refresh_window=5)
    put(short, "k", 1)  # a 10 s entry: refreshing it would keep half its life in flight
    assert short.get("k") == 1
    clock.now += 6
    assert short.expiring() == []


def test_refresh_ahead_is_off_without_a_window():
    clock = FakeClock()
    cache = make(ttl=60, clock=clock)
    put(cache, "k", 1)
    assert cache.get("k") == 1
    clock.now += 58
    assert cache.expiring() == []


def test_refresh_bookkeeping_stays_bounded_without_refreshes():
    clock = FakeClock()
    cache = LocalCache(10, lambda key: 60, timer=clock, refresh_window=5)
    for i in range(1000):  # LRU pushes entries out; nobody ever asks what is due
        put(cache, f"k{i}", i)
        assert cache.get(f"k{i}") == i
    assert len(cache._expires) <= 2 * 10 and len(cache._read) <= 2 * 10
    for i in range(1000):  # writes evict what was read
        put(cache, f"e{i}", i)
        assert cache.get(f"e{i}") == i
        cache.evict([f"e{i}"])
    assert len(cache._expires) <= 2 * 10 and len(cache._read) <= 2 * 10


def test_refresh_bookkeeping_forgets_what_expired_unread():
    clock = FakeClock()
    cache = LocalCache(10_000, lambda key: 60, timer=clock, refresh_window=5)
    for second in range(600):  # ten TTLs of fresh keys, a few read once, due-checks every tick
        for i in range(20):
            put(cache, f"k{second}:{i}", i)
        assert cache.get(f"k{second}:0") == 0
        if second % 2 == 0:
            cache.expiring()
        clock.now += 1
    live = 60 * 20  # what one TTL of stores holds
    assert len(cache._expires) <= 1.2 * live and len(cache._read) <= 60
    assert len(cache._by_expiry) + len(cache._window) <= 1.2 * live


def test_an_eviction_withdraws_a_refresh_in_flight():
    clock = FakeClock()
    cache = make_refreshing(clock)
    tokens = cache.begin_refresh(["a", "b", "c"])
    cache.evict(["a"])
    cache.evict(prefixes=["b"])
    assert not cache.fill_refreshed("a", tokens["a"], 1)
    assert not cache.fill_refreshed("b", tokens["b"], 2)
    assert cache.fill_refreshed("c", tokens["c"], 3)
    cache.end_refresh(tokens)
    tokens = cache.begin_refresh(["c"])
    cache.clear()
    assert not cache.fill_refreshed("c", tokens["c"], 4)
    assert cache.get("a") is MISSING and cache.get("b") is MISSING and cache.get("c") is MISSING


# --- the byte budget ----------------------------------------------------------------------------

KIB = 1024


def page(n, size=10 * KIB) -> dict:
    """A composed page whose JSON takes about `size` bytes."""
    return {"items": [{"id": f"{n}-{i}", "content": "x" * 90} for i in range(size // 120)], "next_cursor": str(n)}


def test_the_byte_budget_holds_after_many_distinct_large_pages():
    cache = LocalCache(10_000, lambda key: 60, timer=FakeClock(), max_bytes=1024 * KIB)
    for n in range(2_000):
        assert cache.fill_composed(f"page:{n}", page(n), [f"post:{n}"], cache.epoch())
        assert cache.bytes <= 1024 * KIB
    assert cache.bytes > 900 * KIB  # full, not emptied
    assert 90 <= len(cache) <= 105  # ~100 pages of ~10 KiB: the entry bound (10,000) never came into play
    assert cache.get("page:1999") == page(1999) and cache.get("page:0") is MISSING  # LRU order


def test_expired_values_in_the_stash_share_the_budget_and_go_first():
    clock = FakeClock()
    cache = LocalCache(10_000, lambda key: 10 if key.startswith("old") else 60, timer=clock, max_bytes=1024 * KIB)
    for n in range(60):
        put(cache, f"old:{n}", page(n))
    clock.now += 11  # ~600 KiB of old pages expire into the stash
    assert cache.stale("old:59") == page(59)
    for n in range(60):
        put(cache, f"new:{n}", page(n))
        assert cache.bytes <= 1024 * KIB
    assert all(cache.get(f"new:{n}") == page(n) for n in range(60))  # the stash made the room
    assert cache.stale("old:0") is MISSING and cache.stale("old:59") == page(59)  # oldest first


def test_a_stated_size_is_used_instead_of_an_estimate():
    cache = LocalCache(100, lambda key: 60, timer=FakeClock(), max_bytes=64 * KIB)
    assert cache.fill("a", cache.begin("a"), "tiny", size=600)
    assert cache.bytes == 600
    assert not cache.fill("b", cache.begin("b"), "tiny", size=64 * KIB // 64 + 1)  # over 1/64 of it


def test_a_page_larger_than_a_64th_of_the_budget_is_not_kept():
    cache = LocalCache(100, lambda key: 60, timer=FakeClock(), max_bytes=640 * KIB)
    small, big = page(1, 9 * KIB), page(2, 11 * KIB)  # the limit is 10 KiB
    assert cache.fill_composed("small", small, ["p"], cache.epoch())
    assert not cache.fill_composed("big", big, ["p"], cache.epoch())
    assert not cache.fill("big2", cache.begin("big2"), big)
    assert (cache.get("small"), cache.get("big"), cache.get("big2")) == (small, MISSING, MISSING)
    assert cache.too_large == 2
    assert cache.begin("big2") is not None and cache.fill("big2", cache.begin("big2"), small)  # no token left behind


def test_evictions_and_clear_give_the_bytes_back():
    cache = LocalCache(100, lambda key: 60, timer=FakeClock(), max_bytes=640 * KIB)
    for n in range(5):
        put(cache, f"k{n}", page(n))
    cache.evict(["k0", "k1"])
    assert 2.5 * 10 * KIB < cache.bytes < 3.5 * 10 * KIB
    cache.clear()
    assert cache.bytes == 0


def test_a_value_stored_already_expired_is_not_served_nor_kept():
    cache = LocalCache(10, lambda key: 0 if key.startswith("zero") else 10, timer=FakeClock())
    put(cache, "zero:1", "old")  # cachetools drops it at once; nothing of it may stay behind
    assert cache.get("zero:1") is MISSING
    assert "zero:1" not in cache._live and len(cache) == 0
