"""L2 against a real redis-server: leases, guarded fills, write-through, the breaker."""
import pytest
import redis as redis_lib

from feedapp.cache.breaker import CircuitBreaker
from feedapp.cache.postlists import PostList, PostListCodec
from feedapp.cache.remote import L2Unavailable, RemoteCache, lease_key


@pytest.fixture
def remote(redis_client):
    return RemoteCache(redis_client, lease_ms=2000)


def entry(ms, n):
    return f"{ms:015d}{n:024x}"


def test_fill_lands_while_the_lease_stands(remote, redis_client):
    token, _ = remote.lease("k")
    assert token and remote.lease("k") == (None, None)  # a second reader does not get it
    assert remote.fill("k", token, b"v", 10_000)
    assert remote.get("k") == b"v"
    assert 0 < redis_client.pttl("k") <= 10_000
    assert not redis_client.exists(lease_key("k"))


def test_invalidation_between_lease_and_fill_drops_the_fill(remote):
    token, _ = remote.lease("k")  # reader misses and starts loading the old value
    remote.delete(["k"])  # a write commits and invalidates
    assert remote.fill("k", token, b"old", 10_000) is False
    assert remote.get("k") is None


def test_a_new_lease_after_invalidation_wins_over_the_old_one(remote):
    old, _ = remote.lease("k")
    remote.delete(["k"])
    new, _ = remote.lease("k")
    assert new and new != old
    assert not remote.fill("k", old, b"old", 10_000)
    assert remote.fill("k", new, b"new", 10_000)
    assert remote.get("k") == b"new"


def test_a_fill_that_landed_after_the_miss_is_returned_instead_of_a_lease(remote):
    token, _ = remote.lease("k")
    remote.fill("k", token, b"v", 10_000)
    assert remote.lease("k") == (None, b"v")  # the reader's GET missed just before the fill


def test_lease_many_and_fill_many(remote):
    leases = {k: token for k, (token, _) in remote.lease_many(["a", "b"]).items()}
    assert all(leases.values())
    remote.delete(["b"])
    assert remote.fill_many([("a", leases["a"], b"1", 5000), ("b", leases["b"], b"2", 5000)]) == 1
    assert remote.get_many(["a", "b"]) == [b"1", None]


def test_insert_entry_keeps_order_caps_and_skips_absent_lists(remote, redis_client):
    codec = PostListCodec()
    meta = {"pull": ("m",), "authors": frozenset({"m", "n"})}
    redis_client.set("feed", codec.encode(PostList((entry(9, 1), entry(5, 1)), True, **meta)), ex=100)
    assert remote.insert_entry(["feed", "missing"], entry(7, 1), cap=3) == 1
    assert not redis_client.exists("missing")
    assert codec.decode(redis_client.get("feed")) == PostList((entry(9, 1), entry(7, 1), entry(5, 1)), True, **meta)
    remote.insert_entry(["feed"], entry(7, 1), cap=3)  # a repeat changes nothing
    assert len(codec.decode(redis_client.get("feed")).entries) == 3
    remote.insert_entry(["feed"], entry(10, 1), cap=3)
    capped = codec.decode(redis_client.get("feed"))
    assert capped.entries == (entry(10, 1), entry(9, 1), entry(7, 1)) and not capped.complete
    assert 0 < redis_client.ttl("feed") <= 100  # KEEPTTL


def test_insert_entry_deletes_leases_so_a_racing_fill_is_dropped(remote):
    token, _ = remote.lease("feed")  # a reader is building the list from the store
    remote.insert_entry(["feed"], entry(1, 1), cap=10)  # a post is written through
    assert not remote.fill("feed", token, b"\nC", 10_000)


def test_delete_prefix(remote, redis_client):
    for i in range(30):
        redis_client.set(f"p:x:{i}", 1)
    redis_client.set("p:y", 1)
    assert remote.delete_prefix("p:x:") == 30
    assert redis_client.exists("p:y")


def test_breaker_opens_on_failure_and_skips_redis(redis_server):
    dead = redis_lib.Redis(unix_socket_path=str(redis_server.socket_path) + ".nope", socket_timeout=0.2)
    clock = [0.0]
    remote = RemoteCache(dead, breaker=CircuitBreaker(base=1.0, cap=10.0, clock=lambda: clock[0]))
    with pytest.raises(L2Unavailable):
        remote.get("k")
    assert remote.breaker.state == "open"
    calls = []
    dead.get = lambda *a: calls.append(a)
    with pytest.raises(L2Unavailable, match="circuit open"):
        remote.get("k")
    assert calls == []  # no call reached Redis while open
    clock[0] += 11
    remote.get("k")  # half-open: one call goes through, and succeeds
    assert calls and remote.breaker.state == "closed"


def test_breaker_warns_once_per_outage_with_context_and_on_recovery(redis_server, caplog):
    dead = redis_lib.Redis(unix_socket_path=str(redis_server.socket_path) + ".nope", socket_timeout=0.2)
    clock = [0.0]
    remote = RemoteCache(dead, breaker=CircuitBreaker(base=1.0, cap=10.0, clock=lambda: clock[0]))
    with caplog.at_level("WARNING", logger="feedapp.cache.breaker"):
        for _ in range(3):
            clock[0] += 11  # each attempt is a half-open retry that fails again
            with pytest.raises(L2Unavailable):
                remote.get("k")
        degraded = [r.getMessage() for r in caplog.records]
        assert len(degraded) == 1  # one warning per outage, not one per failed call
        assert "L2 (Redis) degraded" in degraded[0] and ".nope" in degraded[0] and "breaker open" in degraded[0]
        dead.get = lambda *a: None
        clock[0] += 11
        remote.get("k")
    recovered = caplog.records[-1].getMessage()
    assert len(caplog.records) == 2 and "recovered after 33.00 s and 3 failed attempts" in recovered
