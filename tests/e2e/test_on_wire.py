"""End to end over the MongoDB wire protocol: gunicorn with 4 workers and MONGO_URI on the
wire server (SecantusDB, or TEST_MONGO_URI's MongoDB), each worker with its own MongoClient.

The freshness promises of test_freshness.py and the one-load stampedes of test_stampede.py,
run on this deployment, and a recorded history of concurrent follows, likes, posts and deletes
by several users (each user's requests one after another, the users at once, every request on
a fresh connection so all workers write) after which every counter and follow list is exact
on every worker. The users' first requests delete a post each at the same moment: concurrent
first bumps of the explore generation, an upsert race on one document.
"""
import random
import threading
from collections import Counter

import pytest

from tests.wireserver import database_name

from .deployment import Deployment
from .support import Probe, fresh, on_every_worker, register_and_login
from .test_freshness import (  # noqa: F401 - pytest collects the imported tests and fixture here
    test_deleted_post_is_gone_from_every_listing_at_once,
    test_follow_and_unfollow_show_in_the_next_feed_read_with_exact_counts,
    test_like_and_unlike_are_exact_on_the_next_read_anywhere,
    test_new_post_heads_the_timeline_and_every_followers_feed_at_once,
    test_profile_edit_is_visible_everywhere_at_once,
    world,
)
from .test_stampede import (  # noqa: F401
    test_cold_post_stampede_costs_one_store_read,
    test_cold_profile_stampede_costs_one_store_read,
)

pytestmark = [pytest.mark.wire, pytest.mark.slow]

WORKERS = 4
USERS = 6
STEPS = 30  # requests per user after its first delete


@pytest.fixture(scope="module")
def module_wire_uri(wire_server):
    """The URI of a database of this module's own on the wire server, dropped at the end."""
    wire_server.refresh_if_tired()
    name = database_name()
    yield wire_server.uri(name)
    wire_server.drop(name)


@pytest.fixture(scope="module")
def dep(tmp_path_factory, module_wire_uri):
    env = {"MONGO_URI": module_wire_uri, "LOG_LEVEL": "WARNING"}
    with Deployment(tmp_path_factory.mktemp("on_wire") / "var", workers=WORKERS, env=env) as running:
        yield running


class Actor:
    """One user's side of the history: what it did and what the store must hold afterwards."""

    def __init__(self, dep, n):
        self.id, self.headers = register_and_login(dep, f"actor{n}_wire")
        self.doomed = self.post(dep, f"actor {n} deletes this")
        self.likeable = self.post(dep, f"actor {n} wants likes")
        self.follows, self.likes, self.posts, self.failures = set(), set(), 1, []

    def post(self, dep, content) -> str:
        created = fresh("POST", dep.url("/api/posts"), headers=self.headers, json={"content": content})
        assert created.status_code == 201, created.text
        return created.json()["id"]

    def act(self, dep, method, path, expected, **kwargs):
        response = fresh(method, dep.url(path), headers=self.headers, **kwargs)
        if response.status_code != expected:
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response

    def run(self, dep, others, start, seed):
        rnd = random.Random(seed)
        start.wait()
        self.act(dep, "DELETE", f"/api/posts/{self.doomed}", 204)
        for _ in range(STEPS):
            other = rnd.choice(others)
            step = rnd.randrange(5)
            if step == 0:
                self.act(dep, "POST", f"/api/users/{other.id}/follow", 200)
                self.follows.add(other.id)
            elif step == 1:
                self.act(dep, "DELETE", f"/api/users/{other.id}/follow", 200)
                self.follows.discard(other.id)
            elif step == 2:
                liked = self.act(dep, "POST", f"/api/posts/{other.likeable}/like", 200)
                assert liked.status_code != 200 or liked.json()["liked"] is True
                self.likes.add(other.likeable)
            elif step == 3:
                self.act(dep, "DELETE", f"/api/posts/{other.likeable}/like", 200)
                self.likes.discard(other.likeable)
            else:
                self.act(dep, "POST", "/api/posts", 201, json={"content": f"step post {self.posts}"})
                self.posts += 1


def run_history(dep, actors):
    start = threading.Barrier(len(actors), timeout=60)
    errors = []

    def one(actor, seed):
        try:
            actor.run(dep, [a for a in actors if a is not actor], start, seed)
        except Exception as err:  # noqa: BLE001 - reported by the test
            errors.append(repr(err))

    threads = [threading.Thread(target=one, args=(a, n), daemon=True) for n, a in enumerate(actors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return errors


def test_concurrent_follows_likes_posts_and_deletes_leave_exact_counters_everywhere(dep):
    actors = [Actor(dep, n) for n in range(USERS)]

    errors = run_history(dep, actors)

    assert not errors, errors
    failures = [f for a in actors for f in a.failures]
    assert not failures, failures[:10]
    followers = Counter(followee for a in actors for followee in a.follows)
    likes = Counter(post for a in actors for post in a.likes)
    probes = []
    for a in actors:
        expected = {"followers_count": followers[a.id], "following_count": len(a.follows), "posts_count": a.posts}
        probes.append(Probe(f"/api/users/{a.id}", counters_are(expected), name=f"profile {a.id}"))
        probes.append(Probe(f"/api/posts/{a.likeable}", counters_are({"likes_count": likes[a.likeable]})))
        probes.append(Probe(f"/api/posts/{a.doomed}", status_is(404)))
        probes.append(Probe(f"/api/users/{a.id}/following?limit=100", lists(a.follows)))
    on_every_worker(dep, probes, per_worker=1)
    print(f"\nhistory on the wire: {USERS} users x {STEPS + 1} requests; follows {sum(followers.values())}, "
          f"likes {sum(likes.values())}, posts {sum(a.posts for a in actors)}")


def counters_are(expected):
    def check(response):
        assert response.status_code == 200, response.text[:200]
        got = {name: response.json()[name] for name in expected}
        assert got == expected, f"got {got}, expected {expected}"
    return check


def status_is(code):
    def check(response):
        assert response.status_code == code, (response.status_code, response.text[:200])
    return check


def lists(user_ids):
    def check(response):
        assert response.status_code == 200, response.text[:200]
        got = {item["id"] for item in response.json()["items"]}
        assert got == set(user_ids), f"lists {sorted(got)}, expected {sorted(user_ids)}"
    return check
