"""Sessions and revocations survive cache memory pressure (a separate, noeviction auth Redis).

Real redis-servers configured as the embedded deployment configures them: a cache server with
a small maxmemory and allkeys-lru, an auth server with noeviction. The cache is filled far past
its limit; a revoked token must stay revoked and a live session must stay live. A control run
on one shared LRU server shows that the same fill does evict sessions there, so the test would
catch a deployment that put auth state back into the cache's Redis.
"""
import logging
import os

import pytest
import redis as redis_lib

from feedapp import create_app
from feedapp.config import Config
from feedapp.infra.embedded_redis import auth_server, cache_server
from feedapp.runtime.bootstrap import start_embedded_redis

MAXMEMORY = "4mb"
VALUE = b"x" * 8192


@pytest.fixture
def cache_redis(tmp_path):
    server = cache_server(tmp_path / "cache", MAXMEMORY, persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def auth_redis(tmp_path):
    server = auth_server(tmp_path / "auth", persist=False).start()
    yield server
    server.stop()


def make_app(config):
    app = create_app(config)
    app.extensions["feedapp"].start()
    app.config["TESTING"] = True
    return app


def sign_up_and_log_in_twice(client):
    body = {"username": "alice", "email": "alice@example.com", "password": "password123"}
    assert client.post("/api/auth/register", json=body).status_code == 201
    login = {"username": "alice", "password": "password123"}
    return [client.post("/api/auth/login", json=login).get_json() for _ in range(2)]


def fill_cache(url, keys, megabytes=40) -> dict:
    """Write cache entries far past maxmemory, as many cache fills would; return INFO stats."""
    client = redis_lib.Redis.from_url(url)
    try:
        for start in range(0, megabytes * 1024 * 1024 // len(VALUE), 500):
            with client.pipeline(transaction=False) as pipe:
                for i in range(start, start + 500):
                    pipe.set(keys.post(f"{i:024x}"), VALUE, ex=3600)
                pipe.execute()
        return client.info()
    finally:
        client.close()


def bearer(tokens):
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_revocations_and_sessions_survive_a_cache_past_its_maxmemory(config, cache_redis, auth_redis):
    app = make_app(config.with_overrides(redis_url=cache_redis.url, auth_redis_url=auth_redis.url))
    client = app.test_client()
    try:
        revoked, live = sign_up_and_log_in_twice(client)
        assert client.post("/api/auth/logout", headers=bearer(revoked)).status_code == 200

        info = fill_cache(cache_redis.url, app.extensions["feedapp"].keys)

        assert info["evicted_keys"] > 0 and info["used_memory"] <= info["maxmemory"] * 1.1
        assert client.get("/api/me", headers=bearer(revoked)).status_code == 401
        assert client.post("/api/auth/refresh", json={"refresh_token": revoked["refresh_token"]}).status_code == 401
        assert client.get("/api/me", headers=bearer(live)).status_code == 200
        refreshed = client.post("/api/auth/refresh", json={"refresh_token": live["refresh_token"]})
        assert refreshed.status_code == 200
        assert client.get("/api/me", headers=bearer(refreshed.get_json())).status_code == 200
    finally:
        app.extensions["feedapp"].close()


def test_control_one_shared_lru_server_does_lose_sessions(config, cache_redis):
    app = make_app(config.with_overrides(redis_url=cache_redis.url, auth_redis_url=None))
    client = app.test_client()
    try:
        first, second = sign_up_and_log_in_twice(client)
        fill_cache(cache_redis.url, app.extensions["feedapp"].keys)
        statuses = [client.get("/api/me", headers=bearer(t)).status_code for t in (first, second)]
        assert 401 in statuses  # the hazard the separate auth server removes
    finally:
        app.extensions["feedapp"].close()


def test_the_embedded_deployment_starts_an_lru_cache_and_a_noeviction_auth_server(tmp_path):
    saved = {name: os.environ.pop(name, None) for name in ("REDIS_URL", "AUTH_REDIS_URL")}
    servers = []
    try:
        config = Config(data_dir=tmp_path, cache_redis_maxmemory="64mb", jwt_secret="s" * 40)
        servers = start_embedded_redis(config, logging.getLogger("test"))
        assert len(servers) == 2
        assert os.environ["REDIS_URL"] == servers[0].url and os.environ["AUTH_REDIS_URL"] == servers[1].url
        cache, auth = (redis_lib.Redis.from_url(s.url) for s in servers)
        assert cache.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
        assert int(cache.config_get("maxmemory")["maxmemory"]) == 64 * 1024 * 1024
        assert auth.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert Config.from_env({**os.environ, "DATA_DIR": str(tmp_path)}).auth_url == servers[1].url
        cache.close()
        auth.close()
    finally:
        for server in servers:
            server.stop()
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def test_a_configured_redis_url_starts_nothing_and_auth_defaults_to_it(tmp_path):
    config = Config(redis_url="redis://example.invalid:6379/0", data_dir=tmp_path, jwt_secret="s" * 40)
    assert start_embedded_redis(config, logging.getLogger("test")) == []
    assert config.auth_url == config.redis_url


def test_an_evicting_auth_store_is_reported(tmp_path, cache_redis, caplog):
    from feedapp.runtime.bootstrap import warn_if_auth_store_evicts

    config = Config(redis_url=cache_redis.url, data_dir=tmp_path, jwt_secret="s" * 40)
    with caplog.at_level(logging.WARNING):
        warn_if_auth_store_evicts(config, logging.getLogger("test"))
    assert "allkeys-lru" in caplog.text and "AUTH_REDIS_URL" in caplog.text
