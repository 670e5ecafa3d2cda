"""Each way a read could show data older than a returned write, driven on purpose.

Three in-process workers (tests/sim/world.py) share one real redis-server, each through its
own proxy, and the embedded store. Every test names the failure it drives; each one fails on
a write side that trusts an unacknowledged eviction, drains a one-worker outbox only locally,
rechecks followers after a push, caches absent ids without a write undoing them, forgets a
failed eviction before applying it, or counts lookups instead of requests.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib
from bson import ObjectId
from pymongo.errors import AutoReconnect

from feedapp.cache.remote import L2Unavailable
from feedapp.observability.report import tier_counts

from .simulation import Simulation


@pytest.fixture
def sim(workers, tmp_path):
    simulation = Simulation(workers, tmp_path / "var", seed=1)
    simulation.setup(users=4)
    return simulation


def profile(worker, user):
    response = worker.client.get(f"/api/users/{user.id}")
    assert response.status_code == 200, response.get_json()
    return response


def rename(worker, user, name):
    response = worker.client.patch("/api/me", json={"display_name": name}, headers=user.auth)
    assert response.status_code == 200, response.get_json()


def cached_everywhere(workers, user):
    for worker in workers:
        profile(worker, user)
        assert profile(worker, user).headers["X-Cache"] == "L1"


def test_a_redis_blip_seen_by_one_worker_leaves_no_other_serving_the_old_value(sim, workers):
    a, b, c = workers
    user = sim.users[0]
    cached_everywhere(workers, user)
    a.proxy.cut(0.5)  # a alone cannot reach Redis: its L2 delete and its publish fail
    rename(a, user, "renamed during a blip")
    for worker in (b, c):
        assert profile(worker, user).get_json()["display_name"] == "renamed during a blip"
    time.sleep(0.6)
    for worker in workers:  # and after a resubscribes, nobody has it either
        assert profile(worker, user).get_json()["display_name"] == "renamed during a blip"


def test_an_acknowledgement_that_did_not_arrive_is_not_taken_for_success(sim, workers):
    a, b, _ = workers
    user = sim.users[0]
    cached_everywhere(workers, user)
    b.proxy.freeze_subscribers(3.0)  # b's listener is alive but hears nothing for a while
    started = time.monotonic()
    rename(a, user, "renamed while b was slow")
    waited = time.monotonic() - started
    assert profile(b, user).get_json()["display_name"] == "renamed while b was slow"
    assert waited < 2.5  # the writer waited for b's trust to lapse, not for b
    assert waited >= b.res.tiers.trust.lease * 0.9


def test_a_stray_subscriber_does_not_slow_writes(sim, workers, redis_server):
    stray = redis_lib.Redis(unix_socket_path=str(redis_server.socket_path)).pubsub()
    stray.subscribe(workers[0].res.keys.channel)
    stray.get_message(timeout=1)
    try:
        started = time.monotonic()
        rename(workers[0], sim.users[0], "quick")
        assert time.monotonic() - started < workers[0].res.tiers.trust.lease / 2
    finally:
        stray.close()


def test_an_unfollow_racing_a_post_never_leaves_the_post_in_the_unfollowers_feed(sim, workers):
    """The post's fan-out read the author's followers before the unfollow; it pushes into a
    feed rebuilt after the unfollow, and the store fails right after (no re-check helps)."""
    a, b, c = workers
    fan, author = sim.users[0], sim.users[1]
    assert b.client.post(f"/api/users/{author.id}/follow", headers=fan.auth).status_code == 200
    feeds_before_unfollow = a.res.fanout.follower_feeds(ObjectId(author.id))
    assert a.res.keys.feed(ObjectId(fan.id)) in feeds_before_unfollow
    assert b.client.delete(f"/api/users/{author.id}/follow", headers=fan.auth).status_code == 200
    assert c.client.get(f"/api/users/{fan.id}/feed").get_json()["items"] == []  # rebuilt, empty
    calls = []

    def followers_as_read_before_the_unfollow(author_id):
        calls.append(author_id)
        if len(calls) > 1:
            raise AutoReconnect("simulated: the store went away after the push")
        return feeds_before_unfollow

    a.res.fanout.follower_feeds = followers_as_read_before_the_unfollow
    created = a.client.post("/api/posts", json={"content": "after the unfollow"}, headers=author.auth)
    assert created.status_code == 201
    for worker in workers:
        items = worker.client.get(f"/api/users/{fan.id}/feed").get_json()["items"]
        assert [p["author"]["id"] for p in items if p["author"]["id"] == author.id] == [], worker.name


def test_a_user_asked_for_before_registering_is_found_once_registered(sim, workers):
    a = workers[0]
    probe = ObjectId()
    predicted = ObjectId(probe.binary[:9] + (int.from_bytes(probe.binary[9:], "big") + 1).to_bytes(3, "big"))
    for worker in workers:
        assert worker.client.get(f"/api/users/{predicted}").status_code == 404  # cached as absent
    body = {"username": "predicted", "email": "predicted@example.com", "password": "password123"}
    created = a.client.post("/api/auth/register", json=body)
    assert created.status_code == 201
    assert created.get_json()["user"]["id"] == str(predicted)
    for worker in workers:
        response = worker.client.get(f"/api/users/{predicted}")
        assert response.status_code == 200, (worker.name, response.get_json())


def test_a_failed_eviction_keeps_this_workers_readers_off_l2_until_it_is_applied(sim, workers):
    """A write's L2 delete and its publish fail, its listener stays subscribed. The eviction
    is retried later; while the retry's L2 delete is on its way, a reader of this worker must
    not take the old value from L2."""
    a = workers[0]
    user = sim.users[0]
    cached_everywhere(workers, user)
    remote, publisher = a.res.tiers.remote, a.res.tiers.publisher
    real_delete, real_publish = remote.delete, publisher.publish
    inside, release = threading.Event(), threading.Event()
    attempts = []

    def delete(keys):
        attempts.append(keys)
        if len(attempts) == 1:
            raise L2Unavailable("simulated: the write's own delete fails")
        inside.set()  # the retry: paused on its way to Redis
        release.wait(10)
        return real_delete(keys)

    def publish_fails_once(*args, **kwargs):
        publisher.publish = real_publish
        raise redis_lib.ConnectionError("simulated: the write's publish fails too")

    remote.delete, publisher.publish = delete, publish_fails_once
    try:
        with ThreadPoolExecutor(1) as pool:
            writing = pool.submit(rename, a, user, "renamed, evicted late")
            assert inside.wait(10)
            assert profile(a, user).get_json()["display_name"] == "renamed, evicted late"
            release.set()
            writing.result(10)
    finally:
        remote.delete, publisher.publish = real_delete, real_publish
        release.set()
    for worker in workers:
        assert profile(worker, user).get_json()["display_name"] == "renamed, evicted late"


@pytest.mark.parametrize("listing", ["timeline", "explore"])
def test_a_cold_key_loads_from_the_store_once_across_workers_however_slow_the_store(sim, workers, listing):
    author = sim.users[0]
    path = f"/api/users/{author.id}/posts" if listing == "timeline" else "/api/posts?q=hello&page_size=7"
    family = "timeline" if listing == "timeline" else "explore"
    loads = []
    for worker in workers:  # a slow store: each load of the listing takes 1.5 s
        repo = worker.res.repo
        real = repo.timeline if listing == "timeline" else repo.explore

        def slow(*args, _real=real, **kwargs):
            loads.append(1)
            time.sleep(1.5)
            return _real(*args, **kwargs)

        setattr(repo, "timeline" if listing == "timeline" else "explore", slow)
    before = sum(w.res.stats.counted()[f"l3.reads.{family}"] for w in workers)
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda i: workers[i % 3].client.get(path), range(24)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.get_data() for r in answers}) == 1
    assert len(loads) == 1
    assert sum(w.res.stats.counted()[f"l3.reads.{family}"] for w in workers) - before == 1


def test_every_cacheable_request_is_counted_once_in_the_tier_it_names(sim, workers):
    a, b = workers[0], workers[1]
    user = sim._register(b)  # nothing of this user is cached on a
    loads = []
    real = a.res.repo.get_user

    def slow_user(user_id):
        loads.append(user_id)
        time.sleep(0.3)  # long enough for the others to join this load
        return real(user_id)

    a.res.repo.get_user = slow_user
    before = tier_counts(a.res.stats.counted())
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: a.client.get(f"/api/users/{user.id}"), range(120)))
    after = tier_counts(a.res.stats.counted())
    named = [r.headers["X-Cache"] for r in answers]
    assert {r.status_code for r in answers} == {200}
    grew = [n - b for n, b in zip(after, before)]
    assert grew == [named.count("L1"), named.count("L2"), named.count("L3")] and sum(grew) == 120
    assert len(loads) == 1 and named.count("L1") < 120  # the others joined that load
    feed = a.client.get(f"/api/users/{user.id}/feed")  # one request, however many lookups
    assert sum(tier_counts(a.res.stats.counted())) == sum(after) + 1 and feed.status_code == 200
