"""GET /api/cache/stats and POST /api/cache/invalidate."""
import os
import socket

import jwt
import pytest
from bson import ObjectId

from feedapp import create_app

from ..cache.workers import eventually
from .helpers import (
    JUNK,
    NOT_OBJECTS,
    UNKNOWN_ID,
    assert_error,
    assert_validation_error,
    big_body,
    create_post,
    raw_json,
)

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


def test_stats_maxsize_is_the_configured_l1_size(client, worker):
    l1 = stats(client)["tiers"]["l1"]
    assert (l1["maxsize"], l1["max_bytes"]) == (worker.config.l1_maxsize, worker.config.l1_max_bytes)


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
    app.extensions["feedapp"].start()
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


def profile_bio(client, user):
    """(bio, tier) of a read of user's public profile."""
    response = client.get(f"/api/users/{user.id}")
    assert response.status_code == 200
    return response.get_json()["bio"], response.headers["X-Cache"]


def post_content(client, post_id):
    """(content, tier) of a read of one post."""
    response = client.get(f"/api/posts/{post_id}")
    assert response.status_code == 200
    return response.get_json()["content"], response.headers["X-Cache"]


def behind_the_caches(worker, collection, ident, **fields):
    """Change a document in the store directly, not through a service: nothing is evicted, so
    the caches go on serving the old representation until an admin invalidates it."""
    result = worker.repo.db[collection].update_one({"_id": ObjectId(ident)}, {"$set": fields})
    assert result.modified_count == 1


def stale_profile(client, worker, user, bio="changed in the store"):
    """Cache user's profile, change it in the store behind the caches, and check that the
    cached read is now stale (served from L1 with the old bio); returns the old bio."""
    old, _ = profile_bio(client, user)  # now in L1 and L2, if it was not before
    behind_the_caches(worker, "users", user.id, bio=bio)
    assert profile_bio(client, user) == (old, "L1")
    return old


# The ways an admin can name a cached profile: a key relative to the cache area (as the key
# scheme writes it, braces of the hash tag included) or absolute, or a prefix of either.
PROFILE_TARGETS = {
    "relative key": lambda keys, user_id: {"keys": [f"profile:{{{user_id}}}"]},
    "absolute key": lambda keys, user_id: {"keys": [keys.profile(user_id)]},
    "prefix of one user": lambda keys, user_id: {"prefix": f"profile:{{{user_id}}}"},
    "family prefix": lambda keys, user_id: {"prefix": "profile:"},
    "absolute family prefix": lambda keys, user_id: {"prefix": keys.cache_root + "profile:"},
}


@pytest.mark.parametrize("target", PROFILE_TARGETS.values(), ids=PROFILE_TARGETS)
def test_invalidate_evicts_a_stale_cached_profile_from_l1_and_l2(client, admin, alice, worker, target):
    stale_profile(client, worker, alice)
    response = invalidate(client, admin, target(worker.keys, alice.id))
    assert response.status_code == 200
    assert response.get_json() == {"invalidated": 1}  # the one cached profile, deleted from L2
    assert profile_bio(client, alice) == ("changed in the store", "L3")  # and gone from this L1


def test_invalidate_counts_only_the_cached_keys_it_deleted(client, admin, alice, bob, worker):
    stale_profile(client, worker, alice, bio="alice, changed")
    stale_profile(client, worker, bob, bio="bob, changed")
    names = [f"profile:{{{alice.id}}}", f"profile:{{{bob.id}}}", f"profile:{{{UNKNOWN_ID}}}"]
    response = invalidate(client, admin, {"keys": names})
    assert response.status_code == 200 and response.get_json() == {"invalidated": 2}
    assert invalidate(client, admin, {"keys": names}).get_json() == {"invalidated": 0}  # none left
    assert profile_bio(client, alice) == ("alice, changed", "L3")
    assert profile_bio(client, bob) == ("bob, changed", "L3")


def test_invalidate_evicts_only_what_it_names(client, admin, alice, worker):
    post_id = create_post(client, alice, "as written")["id"]
    assert post_content(client, post_id)[1] == "L3"
    behind_the_caches(worker, "posts", post_id, content="changed in the store")
    stale_profile(client, worker, alice)

    assert invalidate(client, admin, {"prefix": "profile:"}).get_json() == {"invalidated": 1}
    assert profile_bio(client, alice) == ("changed in the store", "L3")
    assert post_content(client, post_id) == ("as written", "L1")  # another family: untouched

    assert invalidate(client, admin, {"keys": [f"post:{{{post_id}}}"]}).get_json() == {"invalidated": 1}
    assert post_content(client, post_id) == ("changed in the store", "L3")


@pytest.fixture
def two_workers(config, redis_client):
    """Two apps as two workers of one deployment: one embedded store, one Redis, each its own
    L1 and invalidation listener."""
    shared = config.with_overrides(mongo_uri=None)
    apps = [create_app(shared) for _ in range(2)]
    for app in apps:
        app.extensions["feedapp"].start()
    for app in apps:
        app.config["TESTING"] = True
        assert eventually(app.extensions["feedapp"].tiers.trust.l1), "a worker never trusted its L1"
    yield [app.test_client() for app in apps]
    for app in apps:
        app.extensions["feedapp"].close()


def test_invalidate_evicts_from_the_l1_of_every_worker(two_workers):
    a, b = two_workers
    user = logged_in(a, "someone")
    root = logged_in(a, "root", admin=True)
    user_id = a.get("/api/me", headers=user).get_json()["id"]
    worker = a.application.extensions["feedapp"]

    def bio_in(client):
        response = client.get(f"/api/users/{user_id}")
        return response.get_json()["bio"], response.headers["X-Cache"]

    assert bio_in(a)[1] == "L3" and bio_in(b)[1] == "L2"  # both workers hold it in L1 now
    old = bio_in(b)[0]
    behind_the_caches(worker, "users", user_id, bio="changed in the store")
    assert bio_in(b) == (old, "L1")
    response = a.post(INVALIDATE, json={"keys": [f"profile:{{{user_id}}}"]}, headers=root)
    assert response.get_json() == {"invalidated": 1}
    assert bio_in(b) == ("changed in the store", "L3")  # the other worker's L1 was evicted too


def test_invalidate_without_token_is_401(client):
    assert_error(client.post(INVALIDATE, json={"prefix": "profile:"}), 401, "unauthorized")


def test_invalidate_by_non_admin_is_403(client, alice):
    assert_error(invalidate(client, alice, {"prefix": "profile:"}), 403, "forbidden")


def test_invalidate_by_non_admin_is_403_whatever_the_body(client, alice):
    assert_error(raw_json(client, "POST", INVALIDATE, "[]", headers=alice.headers), 403, "forbidden")


def test_invalidate_with_a_forged_admin_claim_is_still_403(client, alice, worker):
    claims = jwt.decode(alice.access_token, options={"verify_signature": False})
    token = jwt.encode({**claims, "role": "admin"}, worker.config.jwt_secret, algorithm="HS256")
    response = client.post(INVALIDATE, json={"prefix": "profile:"}, headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 403, "forbidden")


def test_admin_demoted_loses_invalidate_at_once(client, admin, worker):
    worker.repo.set_role(admin.username, "user")
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
def test_rejected_invalidation_of_auth_state_changes_nothing(client, admin, alice, worker, target):
    token = jwt.decode(alice.access_token, options={"verify_signature": False})
    assert_error(invalidate(client, admin, target(worker.keys, token)), 400, "validation_error")
    assert client.get("/api/me", headers=alice.headers).status_code == 200
    assert client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token}).status_code == 200
