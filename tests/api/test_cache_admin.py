"""GET /api/cache/stats and POST /api/cache/invalidate."""
import os
import socket

import jwt
import pytest

from feedapp import create_app

from .helpers import JUNK, NOT_OBJECTS, assert_error, assert_validation_error, big_body, raw_json

INVALIDATE = "/api/cache/invalidate"


def stats(client):
    response = client.get("/api/cache/stats")
    assert response.status_code == 200
    return response.get_json()


# --- stats ------------------------------------------------------------------------------------


def test_stats_has_the_documented_shape(client):
    body = stats(client)
    assert {"hit_ratio", "tiers", "invalidations", "workers"} <= set(body)
    assert {"l1", "l2", "l3"} <= set(body["tiers"])
    assert {"hits", "misses", "size", "maxsize"} <= set(body["tiers"]["l1"])
    assert {"hits", "misses", "keys", "used_memory"} <= set(body["tiers"]["l2"])
    assert {"reads"} <= set(body["tiers"]["l3"])
    assert {"published", "received"} <= set(body["invalidations"])


def test_stats_values_have_the_documented_types(client):
    body = stats(client)
    assert isinstance(body["hit_ratio"], (int, float)) and 0 <= body["hit_ratio"] <= 1
    numbers = [
        *(body["tiers"]["l1"][k] for k in ("hits", "misses", "size", "maxsize")),
        *(body["tiers"]["l2"][k] for k in ("hits", "misses", "keys")),
        body["tiers"]["l3"]["reads"], body["invalidations"]["published"], body["invalidations"]["received"],
        body["workers"],
    ]
    assert all(type(n) is int and n >= 0 for n in numbers), body
    assert isinstance(body["tiers"]["l2"]["used_memory"], str)


def test_stats_counts_this_worker(client):
    assert stats(client)["workers"] >= 1


def test_stats_maxsize_is_the_configured_l1_size(client, resources):
    l1 = stats(client)["tiers"]["l1"]
    assert (l1["maxsize"], l1["max_bytes"]) == (resources.config.l1_maxsize, resources.config.l1_max_bytes)


def test_stats_count_the_encoded_bytes_in_l1(client, alice):
    before = stats(client)["tiers"]["l1"]["bytes"]
    body = client.get(f"/api/users/{alice.id}").get_data()  # a profile enters L1
    assert stats(client)["tiers"]["l1"]["bytes"] - before >= len(body) // 2


def test_stats_count_l3_reads_of_cacheable_gets(client, alice):
    before = stats(client)["tiers"]["l3"]["reads"]
    assert client.get(f"/api/users/{alice.id}").headers["X-Cache"] == "L3"
    assert stats(client)["tiers"]["l3"]["reads"] > before


def test_stats_need_no_token(client):
    assert client.get("/api/cache/stats").status_code == 200


@pytest.fixture
def production(config, redis_client):
    app = create_app(config.with_overrides(env="production"))
    app.config["TESTING"] = True
    yield app.test_client()
    app.extensions["feedapp"].close()


def logged_in(client, username, admin=False) -> dict:
    body = {"username": username, "email": f"{username}@example.com", "password": "password123"}
    assert client.post("/api/auth/register", json=body).status_code == 201
    if admin:
        client.application.extensions["feedapp"].repo.set_role(username, "admin")
    tokens = client.post("/api/auth/login", json={"username": username, "password": body["password"]})
    return {"Authorization": f"Bearer {tokens.get_json()['access_token']}"}


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def test_development_stats_name_every_worker(client):
    body = stats(client)
    assert worker_identity() in [w["worker"] for w in body["per_worker"]]


@pytest.mark.parametrize("who", ["anonymous", "user", "bad token"])
def test_production_stats_tell_others_no_host_names_or_pids(production, who):
    headers = {
        "anonymous": {},
        "user": logged_in(production, "someone"),
        "bad token": {"Authorization": "Bearer not-a-token"},
    }[who]
    response = production.get("/api/cache/stats", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert "per_worker" not in body and body["workers"] >= 1  # the aggregate is still there
    assert worker_identity() not in response.get_data(as_text=True)


def test_production_stats_name_every_worker_to_an_admin(production):
    body = production.get("/api/cache/stats", headers=logged_in(production, "root", admin=True)).get_json()
    assert worker_identity() in [w["worker"] for w in body["per_worker"]]


# --- invalidate -------------------------------------------------------------------------------


def invalidate(client, user, body):
    return client.post(INVALIDATE, json=body, headers=user.headers)


@pytest.mark.parametrize(
    "body",
    [
        {"keys": ["profile:0123456789abcdef01234567"]},
        {"keys": ["feedapp:v1:cache:post:0123456789abcdef01234567"]},
        {"keys": ["post:a", "timeline:b:20:-", "feed:c:20:-", "username:alice", "explore:0:abc"]},
        {"prefix": "profile:"},
        {"prefix": "feed:0123456789abcdef01234567:"},
        {"prefix": "feedapp:v1:cache:explore:"},
    ],
)
def test_admin_invalidates_cache_keys_and_prefixes(client, admin, body):
    response = invalidate(client, admin, body)
    assert response.status_code == 200
    result = response.get_json()
    assert set(result) == {"invalidated"} and type(result["invalidated"]) is int and result["invalidated"] >= 0


def test_reads_stay_correct_after_invalidation(client, admin, alice):
    client.get(f"/api/users/{alice.id}")
    client.patch("/api/me", json={"bio": "fresh"}, headers=alice.headers)
    invalidate(client, admin, {"keys": [f"profile:{alice.id}"]})
    assert client.get(f"/api/users/{alice.id}").get_json()["bio"] == "fresh"


def test_invalidate_without_token_is_401(client):
    assert_error(client.post(INVALIDATE, json={"prefix": "profile:"}), 401, "unauthorized")


def test_invalidate_by_non_admin_is_403(client, alice):
    assert_error(invalidate(client, alice, {"prefix": "profile:"}), 403, "forbidden")


def test_invalidate_by_non_admin_is_403_whatever_the_body(client, alice):
    assert_error(raw_json(client, "POST", INVALIDATE, "[]", headers=alice.headers), 403, "forbidden")


def test_invalidate_with_a_forged_admin_claim_is_still_403(client, alice, resources):
    claims = jwt.decode(alice.access_token, options={"verify_signature": False})
    token = jwt.encode({**claims, "role": "admin"}, resources.config.jwt_secret, algorithm="HS256")
    response = client.post(INVALIDATE, json={"prefix": "profile:"}, headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 403, "forbidden")


def test_admin_demoted_loses_invalidate_at_once(client, admin, resources):
    resources.repo.set_role(admin.username, "user")
    assert_error(invalidate(client, admin, {"prefix": "profile:"}), 403, "forbidden")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"keys": ["auth:session:x"]}, "keys"),
        ({"keys": ["feedapp:v1:auth:session:x"]}, "keys"),
        ({"keys": ["feedapp:v1:stats"]}, "keys"),
        ({"keys": ["other:x"]}, "keys"),
        ({"keys": ["profile"]}, "keys"),
        ({"keys": ["profile:*"]}, "keys"),
        ({"keys": ["*"]}, "keys"),
        ({"keys": ["profile:ok", "auth:revoked:y"]}, "keys"),
        ({"keys": []}, "keys"),
        ({"keys": [""]}, "keys"),
        ({"keys": ["profile:" + "x" * 300]}, "keys"),
        ({"keys": "profile:x"}, "keys"),
        ({"keys": [1]}, "keys"),
        ({"keys": [{"$ne": None}]}, "keys"),
        ({"keys": [["profile:x"]]}, "keys"),
        ({"prefix": "auth:"}, "prefix"),
        ({"prefix": "auth:session:"}, "prefix"),
        ({"prefix": "feedapp:v1:auth:"}, "prefix"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": "*"}, "prefix"),
        ({"prefix": "profile"}, "prefix"),
        ({"prefix": "feedapp:v1:"}, "prefix"),
        ({"keys": ["profile:x"], "extra": 1}, "extra"),
    ],
)
def test_invalidate_rejects_keys_outside_cache_families(client, admin, body, field):
    assert_validation_error(invalidate(client, admin, body), field)


@pytest.mark.parametrize("value", JUNK, ids=repr)
def test_invalidate_rejects_junk_prefix_types(client, admin, value):
    assert_validation_error(invalidate(client, admin, {"prefix": value}), "prefix")


@pytest.mark.parametrize("body", [{}, {"keys": ["profile:x"], "prefix": "profile:"}])
def test_invalidate_needs_exactly_one_of_keys_or_prefix(client, admin, body):
    assert_error(invalidate(client, admin, body), 400, "validation_error")


@pytest.mark.parametrize("text", NOT_OBJECTS, ids=lambda t: repr(t)[:30])
def test_invalidate_rejects_non_object_bodies(client, admin, text):
    assert_error(raw_json(client, "POST", INVALIDATE, text, headers=admin.headers), 400, "invalid_json")


def test_invalidate_rejects_lone_surrogates_without_500(client, admin):
    response = raw_json(client, "POST", INVALIDATE, '{"prefix": "profile:\\ud800"}', headers=admin.headers)
    assert response.status_code == 400


def test_invalidate_rejects_bodies_over_64_kib(client, admin):
    assert_error(raw_json(client, "POST", INVALIDATE, big_body(), headers=admin.headers), 413, "payload_too_large")


@pytest.mark.parametrize(
    "target",
    [
        lambda keys, token: {"keys": [f"auth:session:{token['sid']}"]},
        lambda keys, token: {"keys": [keys.session(token["sub"], token["sid"])]},
        lambda keys, token: {"keys": [keys.sessions(token["sub"])]},
        lambda keys, token: {"prefix": "auth:session:"},
        lambda keys, token: {"prefix": keys.auth_root},
    ],
)
def test_rejected_invalidation_of_auth_state_changes_nothing(client, admin, alice, resources, target):
    token = jwt.decode(alice.access_token, options={"verify_signature": False})
    assert_error(invalidate(client, admin, target(resources.keys, token)), 400, "validation_error")
    assert client.get("/api/me", headers=alice.headers).status_code == 200
    assert client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token}).status_code == 200
