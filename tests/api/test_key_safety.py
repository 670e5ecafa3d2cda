"""Hostile input through the API cannot shape cache keys; admin invalidation needs an admin."""
import re
from urllib.parse import quote

import pytest

from .helpers import assert_error, bearer, expired

HOSTILE = [
    "../auth", "a:b", "{x}", "}{", "*", "?", "[a]", "%00", "\\", "é" * 10, "x" * 5000,
    "alice}:feedapp:v1:auth:session:{x", "😀😀😀", "..%2F..%2F",
]
# Every key the app may write: cache entries and leases, auth state, stats, acks.
KEY_SHAPE = re.compile(
    r"feedapp:v1:(cache:(profile|author|username|post|timeline|feed|explore|meta):\{[A-Za-z0-9_~:-]{1,80}\}(:lease)?"
    r"|auth:(sessions|revoked|login:(account|address)|register:address):\{?[A-Za-z0-9_~-]{1,64}\}?"
    r"|auth:session:\{[A-Za-z0-9_~-]{1,64}\}:[A-Za-z0-9_~-]{1,64}"
    r"|stats(:.*)?|ack:.*|invalidate.*)"
)


def all_keys(redis_client):
    return sorted(k.decode() for k in redis_client.scan_iter(count=1000))


def assert_key_shapes(redis_client):
    for key in all_keys(redis_client):
        if key.startswith("feedapp:v1:cache:") or key.startswith("feedapp:v1:auth:"):
            assert KEY_SHAPE.fullmatch(key), key


@pytest.mark.parametrize("name", HOSTILE, ids=lambda t: repr(t)[:20])
def test_hostile_usernames_are_404_and_write_no_key(client, redis_client, alice, name):
    before = all_keys(redis_client)
    response = client.get(f"/api/users/by-username/{quote(name, safe='')}")
    assert_error(response, 404, "not_found")
    assert [k for k in all_keys(redis_client) if "username" in k] == [k for k in before if "username" in k]
    assert_key_shapes(redis_client)


@pytest.mark.parametrize("q", HOSTILE[:-1], ids=lambda t: repr(t)[:20])
def test_hostile_explore_filters_land_in_hashed_explore_keys(client, worker, redis_client, alice, q):
    assert worker.listener.wait_live(5)  # until then L2 is bypassed, and no key would be written
    response = client.get("/api/posts", query_string={"q": q[:100], "sort": "popular"})
    assert response.status_code == 200, response.get_json()
    explore = [k for k in all_keys(redis_client) if ":explore:" in k]
    assert explore and all(re.fullmatch(r"feedapp:v1:cache:explore:\{\d+:[0-9a-f]{24}\}(:lease)?", k) for k in explore)
    assert_key_shapes(redis_client)


def test_mixed_case_names_share_one_key(client, redis_client, alice):
    for name in ("alice", "ALICE", "Alice"):
        assert client.get(f"/api/users/by-username/{name}").status_code == 200
    assert [k for k in all_keys(redis_client) if ":username:" in k] == ["feedapp:v1:cache:username:{alice}"]


# --- the admin invalidation endpoint ----------------------------------------------------------

INVALIDATE = "/api/cache/invalidate"
BODY = {"prefix": "profile:"}


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic abc", "Bearer not-a-jwt", "Token x"])
def test_invalidate_with_a_malformed_authorization_is_401(client, header):
    assert_error(client.post(INVALIDATE, json=BODY, headers={"Authorization": header}), 401, "unauthorized")


def test_invalidate_with_an_expired_admin_token_is_401(client, admin, worker):
    token = expired(worker.config.jwt_secret, admin.access_token)
    assert_error(client.post(INVALIDATE, json=BODY, headers=bearer(token)), 401, "unauthorized")


def test_invalidate_with_a_logged_out_admin_token_is_401(client, admin):
    assert client.post("/api/auth/logout", headers=admin.headers).status_code == 200
    assert_error(client.post(INVALIDATE, json=BODY, headers=admin.headers), 401, "unauthorized")


def test_invalidate_with_a_token_signed_by_another_key_is_401(client, admin):
    from .helpers import forged_token

    token = forged_token("another-secret-" + "y" * 40, admin.access_token)
    assert_error(client.post(INVALIDATE, json=BODY, headers=bearer(token)), 401, "unauthorized")


def test_a_non_admin_cannot_invalidate_and_nothing_is_evicted(client, redis_client, alice, bob):
    assert client.get(f"/api/users/{bob.id}").headers["X-Cache"] == "L3"
    cached = [k for k in all_keys(redis_client) if ":profile:" in k]
    assert cached
    for body in (BODY, {"keys": cached}, {"prefix": "feedapp:v1:cache:profile:"}):
        assert_error(client.post(INVALIDATE, json=body, headers=alice.headers), 403, "forbidden")
    assert set(cached) <= set(all_keys(redis_client))
