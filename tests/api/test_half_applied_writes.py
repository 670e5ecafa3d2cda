"""The store goes away in the middle of a write: after the write's truth committed and
before its derived updates (counters, the explore generation, the feeds' write-through) ran.
Nothing may stay half applied once the store answers again, and no cache may serve data
older than what committed.

The fault is injected by wrapping the store so that chosen operations fail the way pymongo
fails when MongoDB cannot be reached (ServerSelectionTimeoutError), as many times as asked.
"""
import pytest
from bson import ObjectId
from pymongo.errors import ServerSelectionTimeoutError


class FlakyCollection:
    def __init__(self, collection, store, name):
        self._collection, self._store, self._name = collection, store, name

    def __getattr__(self, method):
        attr = getattr(self._collection, method)
        if (self._name, method) not in self._store.failing:
            return attr

        def failing(*args, **kwargs):
            if self._store.failing[(self._name, method)] > 0:
                self._store.failing[(self._name, method)] -= 1
                raise ServerSelectionTimeoutError("test: the store went away")
            return attr(*args, **kwargs)

        return failing


class FlakyStore:
    """The app's database with `failing[(collection, method)] = n`: the next n calls fail."""

    def __init__(self, db):
        self._db = db
        self.failing = {}

    def __getitem__(self, name):
        return FlakyCollection(self._db[name], self, name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def command(self, *args, **kwargs):
        return self._db.command(*args, **kwargs)


@pytest.fixture
def flaky(worker):
    store = FlakyStore(worker.repo.db)
    worker.repo.db = store
    return store


def stored_user(worker, user):
    return worker.repo.db.users.find_one({"_id": ObjectId(user.id)})


def settle(worker, ticks=3):
    """What the worker's recovery thread does on its next ticks (one every quarter lease)."""
    for _ in range(ticks):
        worker.recovery.run()
    assert worker.recovery.pending() == []


def test_a_post_whose_counter_bump_failed_is_stored_and_counted_once_the_store_answers(client, make_user, worker, flaky):
    author = make_user()
    assert client.get(f"/api/users/{author.id}").get_json()["posts_count"] == 0  # cached now
    flaky.failing[("users", "update_one")] = 1  # the $inc posts_count after the insert fails
    created = client.post("/api/posts", json={"content": "hello"}, headers=author.headers)
    assert created.status_code == 201  # the post is stored: the write did not fail
    assert [p["id"] for p in client.get(f"/api/users/{author.id}/posts").get_json()["items"]] == [created.get_json()["id"]]
    settle(worker)
    assert stored_user(worker, author)["posts_count"] == 1
    assert client.get(f"/api/users/{author.id}").get_json()["posts_count"] == 1  # and no cache keeps the old count


def test_a_like_whose_count_failed_after_its_commit_answers_200_and_is_recounted(client, make_user, worker, flaky):
    author, fan = make_user(), make_user()
    post_id = client.post("/api/posts", json={"content": "like me"}, headers=author.headers).get_json()["id"]
    assert client.get(f"/api/posts/{post_id}").get_json()["likes_count"] == 0  # cached now
    flaky.failing[("posts", "find_one_and_update")] = 1
    liked = client.post(f"/api/posts/{post_id}/like", headers=fan.headers)
    assert liked.status_code == 200 and liked.get_json() == {"liked": True, "likes_count": 1}  # committed: never a 5xx
    settle(worker)
    assert client.get(f"/api/posts/{post_id}").get_json()["likes_count"] == 1
    retried = client.post(f"/api/posts/{post_id}/like", headers=fan.headers)  # idempotent
    assert retried.status_code == 200 and retried.get_json() == {"liked": True, "likes_count": 1}


def test_a_follow_whose_counters_failed_is_recounted_and_its_caches_evicted(client, make_user, worker, flaky):
    a, b = make_user(), make_user()
    assert client.get(f"/api/users/{b.id}").get_json()["followers_count"] == 0  # cached now
    flaky.failing[("users", "update_one")] = 2  # both $inc after the follow insert fail
    assert client.post(f"/api/users/{b.id}/follow", headers=a.headers).status_code == 200
    settle(worker)
    assert stored_user(worker, b)["followers_count"] == 1 and stored_user(worker, a)["following_count"] == 1
    assert client.get(f"/api/users/{b.id}").get_json()["followers_count"] == 1


def test_a_post_that_could_not_reach_the_feeds_is_in_them_when_it_returns(client, make_user, worker):
    author, reader = make_user(), make_user()
    client.post(f"/api/users/{author.id}/follow", headers=reader.headers)
    client.post("/api/posts", json={"content": "first"}, headers=author.headers)
    first_feed = client.get(f"/api/users/{reader.id}/feed").get_json()["items"]  # cached now
    assert len(first_feed) == 1
    read_mode = worker.repo.fanout_state

    def unreadable(user_id):  # the author's fan-out mode cannot be read, once
        worker.repo.fanout_state = read_mode
        raise ServerSelectionTimeoutError("test: the store went away")

    worker.repo.fanout_state = unreadable
    created = client.post("/api/posts", json={"content": "second"}, headers=author.headers)
    assert created.status_code == 201
    post_id = created.get_json()["id"]
    timeline = client.get(f"/api/users/{author.id}/posts").get_json()["items"]
    assert timeline[0]["id"] == post_id  # the author's own listing never misses it
    feed = client.get(f"/api/users/{reader.id}/feed").get_json()["items"]
    assert [p["id"] for p in feed][:1] == [post_id]  # nor do the followers' feeds (rebuilt)


def test_a_deleted_post_whose_derived_updates_failed_is_gone_everywhere(client, make_user, worker, flaky):
    author = make_user()
    post_id = client.post("/api/posts", json={"content": "bye"}, headers=author.headers).get_json()["id"]
    client.post(f"/api/posts/{post_id}/like", headers=author.headers)
    assert client.get(f"/api/posts/{post_id}").status_code == 200  # cached now
    assert client.get("/api/posts?q=bye").get_json()["total"] == 1  # cached explore page
    flaky.failing[("users", "update_one")] = 1  # posts_count -1
    flaky.failing[("likes", "delete_many")] = 1
    flaky.failing[("meta", "find_one_and_update")] = 1  # the explore generation bump
    assert client.delete(f"/api/posts/{post_id}", headers=author.headers).status_code == 204
    assert client.get(f"/api/posts/{post_id}").status_code == 404
    assert post_id not in [p["id"] for p in client.get("/api/posts?q=bye").get_json()["items"]]
    settle(worker)
    assert worker.repo.db.likes.count_documents({"post_id": ObjectId(post_id)}) == 0
    assert stored_user(worker, author)["posts_count"] == 0
    assert client.get("/api/posts?q=bye").get_json()["total"] == 0  # the generation moved on


def test_a_write_whose_reply_was_lost_evicts_and_its_retry_leaves_counters_exact(client, make_user, worker, flaky):
    a, b = make_user(), make_user()
    assert client.get(f"/api/users/{b.id}").get_json()["followers_count"] == 0  # cached now
    real = worker.repo.follow

    def applied_then_lost(*args):
        real(*args)
        raise ServerSelectionTimeoutError("test: the reply was lost")

    worker.repo.follow = applied_then_lost
    lost = client.post(f"/api/users/{b.id}/follow", headers=a.headers)
    assert lost.status_code == 503 and "Retry-After" in lost.headers
    worker.repo.follow = real
    retried = client.post(f"/api/users/{b.id}/follow", headers=a.headers)  # finds it already there
    assert retried.status_code == 200
    assert stored_user(worker, b)["followers_count"] == 1 and stored_user(worker, a)["following_count"] == 1
    assert client.get(f"/api/users/{b.id}").get_json()["followers_count"] == 1
