"""End to end on a real Redis Cluster: gunicorn with 4 workers whose REDIS_URL and
AUTH_REDIS_URL name the local cluster (3 masters, 3 replicas). The freshness promises of
API.md and the recorded history check run unchanged: tests/e2e's own tests, imported here
with a `dep` fixture that points the deployment at the cluster."""
import pytest
from redis.cluster import RedisCluster

from feedapp.infra.redis_access import connect
from tests.e2e.deployment import Deployment
from tests.e2e.support import CHECKED, cache_stats
from tests.e2e.test_freshness import *  # noqa: F401,F403 - the freshness suite, on the cluster
from tests.e2e.test_freshness import WORKERS
from tests.e2e.test_history import test_no_read_after_a_write_returns_shows_an_older_profile  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dep(redis_cluster, tmp_path_factory):
    client = connect(redis_cluster.url, timeout=2)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    client.close()
    env = {"REDIS_URL": redis_cluster.url, "AUTH_REDIS_URL": redis_cluster.url, "LOG_LEVEL": "WARNING"}
    with Deployment(tmp_path_factory.mktemp("cluster-freshness") / "var", workers=WORKERS, env=env) as running:
        yield running
    print(f"\nfreshness on the cluster: {CHECKED['answers']} answers checked right after writes, on {WORKERS} workers")


def test_the_deployment_really_runs_on_the_cluster(dep, redis_cluster):
    stats = cache_stats(dep)
    assert stats["workers"] == WORKERS and all(w["listener_live"] for w in stats["per_worker"])
    client = connect(redis_cluster.url, timeout=2)
    try:
        cache_keys = list(client.scan_iter(match="feedapp:v1:cache:*", count=1000))
        assert len({client.get_node_from_key(key).name for key in cache_keys}) == 3, len(cache_keys)
    finally:
        client.close()
