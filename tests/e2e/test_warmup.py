"""Warm-up: at start the hottest users are loaded into L2 once and into every worker's L1."""
import time

import pytest
import redis as redis_lib
import requests

from feedapp.infra.store import EmbeddedDatabase
from feedapp.repository import Repository

from .deployment import Deployment

WARM_USERS = 10


@pytest.fixture(scope="module")
def warmed(tmp_path_factory):
    env = {"SEED_ON_START": "1", "SEED_USERS": "120", "SEED_POSTS": "600", "WARM_USERS": str(WARM_USERS)}
    with Deployment(tmp_path_factory.mktemp("warm") / "var", workers=4, env=env) as running:
        yield running


def stats(dep):
    return requests.get(dep.url("/api/cache/stats"), timeout=5).json()


def test_hottest_profiles_are_l1_hits_on_every_worker_from_the_first_read(warmed):
    repo = Repository(EmbeddedDatabase(warmed.data_dir / "store", "feedapp"))
    hottest = repo.most_followed(3)
    time.sleep(3)  # warm-up threads run right after boot; give them time on a busy machine
    first_tier = {}
    for _ in range(200):
        if len(first_tier) == warmed.workers:
            break
        response = requests.get(warmed.url(f"/api/users/{hottest[0]}"), headers={"Connection": "close"}, timeout=5)
        first_tier.setdefault(response.headers["X-Worker"], response.headers["X-Cache"])
    assert len(first_tier) == warmed.workers
    assert set(first_tier.values()) == {"L1"}, first_tier


def test_warm_up_loads_each_key_from_the_store_once(warmed):
    time.sleep(2.5)  # counters are flushed to Redis once a second
    profile = stats(warmed)["families"]["profile"]
    redis = redis_lib.Redis(unix_socket_path=str(warmed.data_dir / "redis" / "redis.sock"))
    cached_profiles = sum(1 for _ in redis.scan_iter("feedapp:v1:cache:profile:*"))
    # Four workers warmed the same users: one of them loaded each
    # profile from the store into L2, the three others took it from L2.
    assert profile["l3.reads"] == cached_profiles
    assert profile["l2.hits"] >= 3 * WARM_USERS


def test_warm_on_start_can_be_turned_off(tmp_path):
    env = {"SEED_ON_START": "1", "SEED_USERS": "50", "SEED_POSTS": "100", "WARM_ON_START": "0"}
    with Deployment(tmp_path / "var", workers=2, env=env) as dep:
        time.sleep(2.5)
        body = stats(dep)
        assert body["tiers"]["l3"]["reads"] == 0 and body["tiers"]["l2"]["hits"] == 0
