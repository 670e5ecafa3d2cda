"""GET /healthz, /readyz and /metrics."""
from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import ServerSelectionTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError

READY_FIELDS = {"status", "mongo", "redis"}


def test_healthz_is_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_healthz_touches_no_dependency(client, worker, monkeypatch):
    def boom():
        raise AssertionError("healthz must not ping a dependency")

    monkeypatch.setattr(worker.repo, "ping", boom)
    monkeypatch.setattr(worker.redis, "ping", boom)
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_ok_when_everything_is_up(client):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok", "mongo": "ok", "redis": "ok"}


def test_readyz_is_503_with_the_same_shape_when_mongo_is_down(client, worker, monkeypatch):
    def down():
        raise ServerSelectionTimeoutError("no servers")

    monkeypatch.setattr(worker.repo, "ping", down)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.mimetype == "application/json"
    assert response.get_json() == {"status": "degraded", "mongo": "down", "redis": "ok"}
    assert int(response.headers["Retry-After"]) >= 1  # every 503 says when to try again


def test_readyz_is_200_degraded_when_redis_is_down(client, worker, monkeypatch):
    def down():
        raise RedisConnectionError("refused")

    monkeypatch.setattr(worker.redis, "ping", down)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "degraded", "mongo": "ok", "redis": "down"}


def test_readyz_with_both_down_is_503(client, worker, monkeypatch):
    def down():
        raise OSError("down")

    monkeypatch.setattr(worker.repo, "ping", down)
    monkeypatch.setattr(worker.redis, "ping", down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert set(response.get_json()) == READY_FIELDS and response.get_json()["status"] == "degraded"


def metric_families(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {family.name: family for family in text_string_to_metric_families(response.get_data(as_text=True))}


def test_metrics_parse_as_prometheus_text(client):
    families = metric_families(client)
    assert families, "no metric families"
    for family in families.values():
        assert family.type in ("counter", "gauge", "histogram", "summary", "untyped", "info", "stateset")


def test_metrics_report_workers(client):
    workers = metric_families(client)["feedapp_workers"]
    assert workers.type == "gauge" and workers.samples[0].value >= 1


def test_metrics_count_requests_by_tier_and_family(client, alice):
    client.get(f"/api/users/{alice.id}")
    client.get(f"/api/users/{alice.id}")
    samples = metric_families(client)["feedapp_cache_requests"].samples
    profile = [s for s in samples if s.labels.get("family") == "profile" and s.name.endswith("_total")]
    assert profile and all(s.labels["tier"] in ("L1", "L2", "L3") for s in profile)
    assert sum(s.value for s in profile) >= 2


def test_metrics_count_l3_reads_by_family(client, alice):
    client.get(f"/api/users/{alice.id}/posts")
    samples = metric_families(client)["feedapp_cache_lookups"].samples
    assert any(
        s.labels == {"tier": "L3", "outcome": "reads", "family": "timeline"} and s.value >= 1 for s in samples
    )


def test_metrics_need_no_token(client):
    assert client.get("/metrics").status_code == 200


def test_readyz_reports_redis_down_when_the_auth_server_is_unreachable(config, redis_client, tmp_path):
    from dataclasses import replace

    from feedapp import create_app

    app = create_app(replace(config, auth_redis_url=f"unix://{tmp_path}/no-auth-redis.sock"))

    app.extensions["feedapp"].start()
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "degraded", "mongo": "ok", "redis": "down"}
    finally:
        app.extensions["feedapp"].close()


def test_a_worker_boots_and_serves_from_the_store_while_its_redis_cluster_is_unreachable(config):
    """redis-py's RedisCluster connects when built; feedapp's waits for first use, so a worker
    whose cluster is down boots, answers from the store and says Redis is down."""
    import socket

    from feedapp import create_app

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(config.with_overrides(redis_url=f"redis+cluster://127.0.0.1:{port}", auth_redis_url=None))
    worker = app.extensions["feedapp"].start()
    try:
        user = worker.repo.create_user("lonely", "lonely@example.com", "unused-hash", "Lonely")
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").get_json() == {"status": "degraded", "mongo": "ok", "redis": "down"}
        response = client.get(f"/api/users/{user['_id']}")
        assert response.status_code == 200 and response.get_json()["username"] == "lonely"
        assert response.headers["X-Cache"] == "L3"
    finally:
        worker.close()


def test_a_worker_its_server_did_not_start_starts_with_the_first_request(config, redis_client):
    """Under `flask run` or a server without gunicorn.conf.py's post_worker_init."""
    from feedapp import create_app

    app = create_app(config)
    worker = app.extensions["feedapp"]
    try:
        assert not worker.started
        assert app.test_client().get("/healthz").status_code == 200
        assert worker.started and worker.listener.wait_live(5)
    finally:
        worker.close()
