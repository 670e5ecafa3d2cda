"""POST /api/auth/login brute-force limits (feedapp/ratelimit.py), against a real redis-server."""
import threading
import time

import pytest

from feedapp import create_app

from .helpers import assert_error

LOGIN = "/api/auth/login"
ACCOUNT_LIMIT, ADDRESS_LIMIT = 3, 6


@pytest.fixture
def config(config):
    return config.with_overrides(login_account_limit=ACCOUNT_LIMIT, login_address_limit=ADDRESS_LIMIT)


def login(client, username, password, address="10.0.0.1", headers=None):
    return client.post(LOGIN, json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def assert_429(response, scope):
    error = assert_error(response, 429, "too_many_requests")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 15 * 60
    assert error["details"] == {"scope": scope, "retry_after": retry_after}


def test_an_account_is_locked_after_its_failures_even_for_the_right_password(client, alice):
    for _ in range(ACCOUNT_LIMIT):
        assert_error(login(client, "alice", "wrong-password"), 401, "unauthorized")
    assert_429(login(client, "alice", alice.password), "account")
    assert_429(login(client, "ALICE", "wrong-password"), "account")  # any spelling of the name
    assert_429(login(client, alice.email, "wrong-password"), "account")  # or the email


def test_failures_from_many_addresses_are_still_limited_per_account(client, alice):
    for i in range(ACCOUNT_LIMIT):
        assert_error(login(client, "alice", "nope-nope", address=f"10.1.0.{i}"), 401)
    assert_429(login(client, "alice", alice.password, address="10.9.9.9"), "account")


def test_failures_on_one_account_do_not_block_another(client, alice, bob):
    for i in range(ACCOUNT_LIMIT + 2):
        login(client, "alice", "wrong-password", address=f"10.2.0.{i}")
    assert login(client, "bob", bob.password, address="10.2.0.99").status_code == 200
    assert login(client, "bob", bob.password, address="10.2.0.0").status_code == 200


def test_an_address_is_limited_across_accounts(client, make_user):
    victims = [make_user() for _ in range(ADDRESS_LIMIT)]
    for victim in victims:
        assert_error(login(client, victim.username, "wrong-password", address="10.3.0.1"), 401)
    assert_429(login(client, victims[0].username, victims[0].password, address="10.3.0.1"), "address")
    assert login(client, victims[0].username, victims[0].password, address="10.3.0.2").status_code == 200


def test_unknown_names_are_limited_like_accounts(client):
    statuses = [login(client, "nobody_here", "wrong-password").status_code for _ in range(ACCOUNT_LIMIT + 1)]
    assert statuses == [401] * ACCOUNT_LIMIT + [429]


def test_a_success_clears_the_accounts_failures(client, alice):
    for _ in range(ACCOUNT_LIMIT - 1):
        login(client, "alice", "wrong-password")
    assert login(client, "alice", alice.password).status_code == 200
    for _ in range(ACCOUNT_LIMIT):
        assert_error(login(client, "alice", "wrong-password"), 401)
    assert_429(login(client, "alice", alice.password), "account")


def test_successes_do_not_use_up_the_address(client, alice):
    for _ in range(ADDRESS_LIMIT * 2):
        assert login(client, "alice", alice.password).status_code == 200


def test_invalid_bodies_are_not_counted(client, alice):
    for _ in range(ACCOUNT_LIMIT * 3):
        client.post(LOGIN, json={"username": "alice"}, environ_base={"REMOTE_ADDR": "10.4.0.1"})
    assert login(client, "alice", alice.password, address="10.4.0.1").status_code == 200


def test_concurrent_guesses_cannot_overshoot_the_limit(app, alice):
    statuses, start = [], threading.Barrier(12)

    def guess():
        client = app.test_client()
        start.wait()
        statuses.append(login(client, "alice", "wrong-password", address="10.5.0.1").status_code)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * ACCOUNT_LIMIT + [429] * (12 - ACCOUNT_LIMIT)


def test_the_window_ends(config, redis_client):
    app = create_app(config.with_overrides(login_account_window=1))
    app.extensions["feedapp"].start()
    try:
        client = app.test_client()
        client.post("/api/auth/register", json={"username": "dave", "email": "d@example.com", "password": "password123"})
        for _ in range(ACCOUNT_LIMIT):
            login(client, "dave", "wrong-password")
        response = login(client, "dave", "password123")
        assert_429(response, "account")
        assert response.headers["Retry-After"] == "1"
        time.sleep(1.2)
        assert login(client, "dave", "password123").status_code == 200
    finally:
        app.extensions["feedapp"].close()


def test_counters_are_hashed_auth_keys_with_a_ttl(client, redis_client, worker):
    login(client, "some}{:*name", "wrong-password")
    keys = [k.decode() for k in redis_client.scan_iter(match=worker.keys.auth_root + "login:*")]
    assert len(keys) == 2, keys
    for key in keys:
        assert "some" not in key and "10.0.0.1" not in key
        assert 0 < redis_client.ttl(key) <= 15 * 60


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(client, make_user):
    victims = [make_user() for _ in range(ADDRESS_LIMIT)]
    for i, victim in enumerate(victims):  # an attacker cannot spoof fresh addresses
        login(client, victim.username, "wrong-password", headers={"X-Forwarded-For": f"192.0.2.{i}"})
    assert_429(login(client, victims[0].username, victims[0].password), "address")


def test_trusted_proxies_give_the_forwarded_client_address(config, redis_client):
    app = create_app(config.with_overrides(trusted_proxies=1))
    app.extensions["feedapp"].start()
    try:
        client = app.test_client()
        client.post("/api/auth/register", json={"username": "erin", "email": "e@example.com", "password": "password123"})
        for i in range(ADDRESS_LIMIT):
            login(client, f"ghost{i}", "wrong-password", headers={"X-Forwarded-For": "192.0.2.7"})
        via_proxy = {"X-Forwarded-For": "192.0.2.7"}
        assert_429(login(client, "erin", "password123", headers=via_proxy), "address")
        other = {"X-Forwarded-For": "192.0.2.8"}  # same proxy, another client
        assert login(client, "erin", "password123", headers=other).status_code == 200
    finally:
        app.extensions["feedapp"].close()


def test_login_answers_503_when_the_auth_store_is_down(config, redis_client, tmp_path):
    app = create_app(config.with_overrides(auth_redis_url=f"unix://{tmp_path}/no-such.sock"))
    app.extensions["feedapp"].start()
    try:
        response = app.test_client().post(LOGIN, json={"username": "alice", "password": "password123"})
        assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"]
    finally:
        app.extensions["feedapp"].close()
