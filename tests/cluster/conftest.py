"""A real local Redis Cluster (6 redis-servers: 3 masters, 3 replicas) for the cluster tests.

`redis_cluster` is shared by the tests that do not break it; `own_cluster` gives a test a
cluster of its own to kill nodes of. Every redis-server started is stopped at the end, also
when the cluster fails to come up (LocalCluster.start).
"""
import pytest
from redis.cluster import RedisCluster

from feedapp.infra.redis_access import connect

from .local_cluster import LocalCluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    with LocalCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def own_cluster(tmp_path):
    with LocalCluster(tmp_path / "redis-cluster") as cluster:
        yield cluster


@pytest.fixture
def cluster_client(redis_cluster):
    """feedapp's own client for the shared cluster, every primary flushed first."""
    client = connect(redis_cluster.url, timeout=2)
    assert isinstance(client, RedisCluster)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()


# Tests imported here from tests/cache and tests/unit ask for `redis_server` (something with a
# `url`) and `redis_client`: in this package those are the cluster and feedapp's client of it.
@pytest.fixture
def redis_server(redis_cluster):
    return redis_cluster


@pytest.fixture
def redis_client(cluster_client):
    return cluster_client
