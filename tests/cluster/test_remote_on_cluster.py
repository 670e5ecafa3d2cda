"""L2 (RemoteCache) on a real Redis Cluster, with keys spread over every master: each call on
several keys sends one command or script per slot group, never a cross-slot one."""
import pytest
from redis.exceptions import RedisClusterException, ResponseError

from feedapp.cache.keys import Keys
from feedapp.cache.postlists import PostList, PostListCodec
from feedapp.cache.remote import RemoteCache, lease_key
from feedapp.infra.redis_access import slot_groups

KEYS = Keys("c:v1")
CODEC = PostListCodec()


@pytest.fixture
def remote(cluster_client):
    return RemoteCache(cluster_client, lease_ms=5000)


def profiles(n):
    return [KEYS.profile(f"user{i}") for i in range(n)]


def masters_of(client, keys) -> set:
    return {client.get_node_from_key(key).name for key in keys}


def entry(ms, n):
    return f"{ms:015d}{n:024x}"


def test_the_keys_used_here_lie_on_every_master_and_a_cross_slot_script_is_refused(cluster_client):
    keys = profiles(40)
    assert len(masters_of(cluster_client, keys)) == 3
    assert len(slot_groups(cluster_client, keys)) == 40
    with pytest.raises((RedisClusterException, ResponseError)):  # what grouping by slot avoids
        cluster_client.eval("return 1", 2, keys[0], keys[1])


def test_get_many_keeps_the_order_of_keys_across_slots(remote, cluster_client):
    keys = profiles(40)
    for i, key in enumerate(keys):
        if i % 3:
            cluster_client.set(key, f"v{i}")
    assert remote.get_many(keys) == [None if i % 3 == 0 else f"v{i}".encode() for i in range(40)]
    assert remote.get(keys[1]) == b"v1"


def test_leases_fills_and_invalidations_across_slots(remote, cluster_client):
    keys = profiles(30)
    leases = remote.lease_many(keys)
    assert all(token for token, _ in leases.values())
    assert all(cluster_client.exists(lease_key(key)) for key in keys)
    assert remote.lease_many(keys[:5]) == {key: (None, None) for key in keys[:5]}  # held by us
    invalidated = keys[::3]
    assert remote.delete(invalidated) == 0  # no values yet, only leases
    fills = [(key, leases[key][0], f"v-{key}".encode(), 60_000) for key in keys]
    assert remote.fill_many(fills) == len(keys) - len(invalidated)  # those invalidated are refused
    assert remote.get_many(keys) == [None if key in invalidated else f"v-{key}".encode() for key in keys]
    assert remote.lease_many(keys[1:2]) == {keys[1]: (None, f"v-{keys[1]}".encode())}
    assert remote.delete(keys) == len(keys) - len(invalidated)
    assert remote.get_many(keys) == [None] * len(keys)


def test_release_gives_back_only_our_own_leases_across_slots(remote, cluster_client):
    keys = profiles(12)
    leases = {key: token for key, (token, _) in remote.lease_many(keys).items()}
    stolen = keys[0]
    cluster_client.set(lease_key(stolen), "someone-else")
    remote.release(leases)
    assert [cluster_client.exists(lease_key(key)) for key in keys] == [1] + [0] * 11


def test_insert_entry_writes_through_to_feeds_on_every_master(remote, cluster_client):
    feeds = [KEYS.feed(f"user{i}") for i in range(60)]
    cached = feeds[::2]
    for key in cached:
        cluster_client.set(key, CODEC.encode(PostList((entry(9, 1), entry(5, 1)), True, "m")), ex=100)
    token, _ = remote.lease(feeds[1])  # a reader building an uncached feed
    assert remote.insert_entry(feeds, entry(7, 2), cap=3) == len(cached)
    for key in feeds:
        if key in cached:
            assert CODEC.decode(cluster_client.get(key)).entries == (entry(9, 1), entry(7, 2), entry(5, 1))
        else:
            assert not cluster_client.exists(key)
    assert not remote.fill(feeds[1], token, b"\nC", 10_000)  # its lease went with the write
    assert remote.insert_entry(feeds, entry(7, 2), cap=3) == 0  # a repeat changes nothing


def test_delete_prefix_scans_every_master(remote, cluster_client):
    keys = profiles(60)
    for key in keys:
        cluster_client.set(key, 1)
    remote.lease(KEYS.post("p1"))
    cluster_client.set(KEYS.post("p2"), 1)
    assert remote.delete_prefix(KEYS.cache_root + "profile:") == 60
    assert remote.get_many(keys) == [None] * 60
    assert cluster_client.exists(KEYS.post("p2"), lease_key(KEYS.post("p1"))) == 2


def test_scripts_are_loaded_again_on_nodes_that_lost_them(remote, cluster_client):
    keys = profiles(9)
    remote.lease_many(keys)
    cluster_client.script_flush()  # on every primary, as on a freshly promoted replica
    remote.delete(keys)
    assert all(token for token, _ in remote.lease_many(keys).values())


def test_key_count_and_memory_are_summed_over_every_primary(cluster_client):
    from feedapp.infra.redis_access import primaries_total, used_memory_human

    for key in profiles(30):
        cluster_client.set(key, 1)
    assert primaries_total(cluster_client, "DBSIZE") == 30
    per_primary = [primaries_total(n.redis_connection, "INFO", "memory", field="used_memory")
                   for n in cluster_client.get_primaries()]
    assert primaries_total(cluster_client, "INFO", "memory", field="used_memory") >= sum(per_primary) * 0.9
    assert used_memory_human(cluster_client)[-1] in "BKMG"
