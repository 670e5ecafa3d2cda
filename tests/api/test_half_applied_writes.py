"""The store goes away in the middle of a write (issue 5): after the write's truth committed and
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
def flaky(resources):
    store = FlakyStore(resources.repo.db)
    resources.repo.db = store
    return store


def stored_user(resources, user):
    return resources.repo.db.users.find_one({"_id": ObjectId(user.id)})


def test_a_post_whose_counter_bump_failed_is_stored_and_counted_once_the_store_answers(client, make_user, resources, flaky):
    author, other = make_user(), make_user()
    assert client.get(f"/api/users/{author.id}").get_json()["posts_count"] == 0  # cached now
    flaky.failing[("users", "update_one")] = 1  # the $inc posts_count after the insert fails
    created = client.post("/api/posts", json={"content": "hello"}, headers=author.headers)
    assert created.status_code == 201  # the post is stored: the write did not fail
    assert stored_user(resources, author)["posts_count"] == 0  # the derived counter is behind...
    assert client.get(f"/api/users/{author.id}").get_json()["posts_count"] == 0
    assert [p["id"] for p in client.get(f"/api/users/{author.id}/posts").get_json()["items"]] == [created.get_json()["id"]]
    client.post(f"/api/users/{author.id}/follow", headers=other.headers)  # the next write settles it
    assert stored_user(resources, author)["posts_count"] == 1
    assert client.get(f"/api/users/{author.id}").get_json()["posts_count"] == 1  # and no cache keeps the old count


def test_a_like_whose_count_failed_answers_503_and_its_retry_gives_the_right_count(client, make_user, flaky):
    author, fan = make_user(), make_user()
    post_id = client.post("/api/posts", json={"content": "like me"}, headers=author.headers).get_json()["id"]
    assert client.get(f"/api/posts/{post_id}").get_json()["likes_count"] == 0  # cached now
    flaky.failing[("posts", "find_one_and_update")] = 1
    failed = client.post(f"/api/posts/{post_id}/like", headers=fan.headers)
    assert failed.status_code == 503 and failed.get_json()["error"]["code"] == "service_unavailable"
    retried = client.post(f"/api/posts/{post_id}/like", headers=fan.headers)  # idempotent
    assert retried.status_code == 200 and retried.get_json() == {"liked": True, "likes_count": 1}
    assert client.get(f"/api/posts/{post_id}").get_json()["likes_count"] == 1


def test_a_follow_whose_counters_failed_is_recounted_and_its_caches_evicted(client, make_user, resources, flaky):
    a, b = make_user(), make_user()
    assert client.get(f"/api/users/{b.id}").get_json()["followers_count"] == 0  # cached now
    flaky.failing[("users", "update_one")] = 2  # both $inc after the follow insert fail
    assert client.post(f"/api/users/{b.id}/follow", headers=a.headers).status_code == 200
    assert stored_user(resources, b)["followers_count"] == 0
    client.post("/api/posts", json={"content": "settles"}, headers=a.headers)
    assert stored_user(resources, b)["followers_count"] == 1 and stored_user(resources, a)["following_count"] == 1
    assert client.get(f"/api/users/{b.id}").get_json()["followers_count"] == 1


def test_a_post_that_could_not_reach_the_feeds_gets_there_once_the_store_answers(client, make_user, flaky):
    author, reader = make_user(), make_user()
    client.post(f"/api/users/{author.id}/follow", headers=reader.headers)
    client.post("/api/posts", json={"content": "first"}, headers=author.headers)
    first_feed = client.get(f"/api/users/{reader.id}/feed").get_json()["items"]  # cached now
    assert len(first_feed) == 1
    flaky.failing[("users", "find_one")] = 1  # the author's fan-out mode cannot be read
    created = client.post("/api/posts", json={"content": "second"}, headers=author.headers)
    assert created.status_code == 201
    post_id = created.get_json()["id"]
    timeline = client.get(f"/api/users/{author.id}/posts").get_json()["items"]
    assert timeline[0]["id"] == post_id  # the author's own listing never misses it
    client.patch("/api/me", json={"bio": "x"}, headers=author.headers)
    client.post("/api/posts", json={"content": "third"}, headers=reader.headers)  # a write settles
    feed = client.get(f"/api/users/{reader.id}/feed").get_json()["items"]
    assert post_id in [p["id"] for p in feed]


def test_a_deleted_post_whose_derived_updates_failed_is_gone_everywhere(client, make_user, resources, flaky):
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
    client.post("/api/posts", json={"content": "settle"}, headers=author.headers)
    assert resources.repo.db.likes.count_documents({"post_id": ObjectId(post_id)}) == 0
    assert stored_user(resources, author)["posts_count"] == 1  # "settle" only


def test_a_recount_is_done_only_once_a_pass_finds_counter_and_source_agreeing(make_user, resources):
    author = make_user()
    repo, uid = resources.repo, ObjectId(author.id)
    repo.db.users.update_one({"_id": uid}, {"$set": {"posts_count": 5}})  # off after a failed $inc
    repo.repairs.add(("user", uid))
    assert repo.repair() == [("user", uid)] and repo.repairs  # set to 0, kept to be verified
    repo.db.users.update_one({"_id": uid}, {"$inc": {"posts_count": 1}})  # another worker's stray $inc
    assert repo.repair() == [("user", uid)] and repo.repairs  # not agreeing: set again
    assert repo.repair() == [] and not repo.repairs  # agreeing without a write: done
    assert stored_user(resources, author)["posts_count"] == 0
