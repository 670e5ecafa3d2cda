"""feedapp/infra/redis_access.py: the cluster URL convention, slot groups and Batch on one Redis
(the cluster side runs in tests/cluster against a real cluster)."""
import logging

import pytest
import redis

from feedapp.config import ConfigError
from feedapp.infra.redis_access import Batch, Script, check_url, cluster_nodes, is_cluster_url, slot_groups
from feedapp.runtime.bootstrap import prepare_deployment


def test_cluster_urls_name_their_startup_nodes():
    assert cluster_nodes("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == (
        [("10.0.0.1", 7000), ("10.0.0.2", 7001)], None, None, False)
    assert cluster_nodes("rediss+cluster://app:s%40cret@[::1]:7000") == ([("::1", 7000)], "app", "s@cret", True)
    assert cluster_nodes("redis+cluster://:pw@h:1/") == ([("h", 1)], None, "pw", False)


@pytest.mark.parametrize("url", ["redis://h:6379/0", "unix:///tmp/r.sock", "rediss://h", None, ""])
def test_other_urls_name_one_redis(url):
    assert not is_cluster_url(url)
    check_url(url)  # nothing to check


@pytest.mark.parametrize("url, message", [
    ("redis+cluster://h", "host:port"),
    ("redis+cluster://h:7000,", "host:port"),
    ("redis+cluster://h:port", "host:port"),
    ("redis+cluster://h:70000", "host:port"),
    ("redis+cluster://h:7000/1", "database"),
    ("redis+cluster://h:7000?timeout=1", "options"),
])
def test_a_malformed_cluster_url_is_a_clear_config_error(url, message):
    with pytest.raises(ConfigError, match=message):
        check_url(url)


def test_a_deployment_with_a_malformed_cluster_url_stops_before_starting_anything(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis+cluster://cache-1,cache-2")
    with pytest.raises(ConfigError, match="host:port"):
        prepare_deployment(logging.getLogger("test"))
    assert not (tmp_path / "redis").exists()  # no embedded redis-server was started


def test_one_redis_has_one_slot_group():
    client = redis.Redis()  # never connected: grouping asks nothing of the server
    assert slot_groups(client, ["a", "{b}c", "d"]) == [["a", "{b}c", "d"]]
    assert slot_groups(client, []) == []


def test_batch_loads_a_script_the_server_lost_and_resends_only_what_failed(redis_client):
    counter = Script("return redis.call('INCR', KEYS[1])")
    assert Batch(redis_client).script(counter, ["n"]).execute() == [1]
    redis_client.script_flush()
    batch = Batch(redis_client).command("INCR", "m").script(counter, ["n"]).script(counter, ["k"])
    assert batch.execute() == [1, 2, 1]  # INCR m ran once; each script once, after loading
    assert (redis_client.get("m"), redis_client.get("n"), redis_client.get("k")) == (b"1", b"2", b"1")


def test_batch_raises_the_first_error_after_sending_everything(redis_client):
    redis_client.set("s", "text")
    with pytest.raises(redis.ResponseError):
        Batch(redis_client).command("INCR", "s").command("SET", "after", 1).execute()
    assert redis_client.get("after") == b"1"
