"""Retries are safe (API.md): Idempotency-Key on POST /api/posts, and counters that stay equal
to their sources when a write's reply is lost and the client sends it again.

A lost reply is injected into the store: the next call of one collection method is applied,
then raises what pymongo raises when the connection drops before the answer (AutoReconnect),
so nothing after it in the same write (counters, evictions) ran.
"""
import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect


def key_headers(user, key):
    return {**user.headers, "Idempotency-Key": key}


def post(client, user, content, key=None):
    headers = key_headers(user, key) if key else user.headers
    return client.post("/api/posts", json={"content": content}, headers=headers)


def stored(worker, collection, ident):
    return worker.repo.db[collection].find_one({"_id": ObjectId(ident)})


def counters_equal_their_sources(worker):
    db = worker.repo.db
    for user in db.users.find({}):
        assert user["posts_count"] == db.posts.count_documents({"author_id": user["_id"]}), user["username"]
        assert user["followers_count"] == db.follows.count_documents({"followee_id": user["_id"]})
        assert user["following_count"] == db.follows.count_documents({"follower_id": user["_id"]})
    for doc in db.posts.find({}):
        assert doc["likes_count"] == db.likes.count_documents({"post_id": doc["_id"]})


class LosingStore:
    """The app's database, where `lose[(collection, method)]` names the next call to lose."""

    def __init__(self, db):
        self._db = db
        self.lose = set()

    def __getitem__(self, name):
        return LosingCollection(self._db[name], self, name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def command(self, *args, **kwargs):
        return self._db.command(*args, **kwargs)


class LosingCollection:
    def __init__(self, collection, store, name):
        self._collection, self._store, self._name = collection, store, name

    def __getattr__(self, method):
        attr = getattr(self._collection, method)
        if (self._name, method) not in self._store.lose:
            return attr

        def applied_then_lost(*args, **kwargs):
            self._store.lose.discard((self._name, method))
            attr(*args, **kwargs)
            raise AutoReconnect("test: the connection dropped before the reply")

        return applied_then_lost


@pytest.fixture
def lose_the_reply(worker):
    """lose_the_reply("likes", "insert_one"): the next such call is applied, then raises."""
    store = LosingStore(worker.repo.db)
    worker.repo.db = store
    return lambda collection, method: store.lose.add((collection, method))


def test_the_same_key_and_body_answer_the_first_result_again(client, alice, worker):
    first = post(client, alice, "only once", key="k-1")
    again = post(client, alice, "only once", key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert worker.repo.db.posts.count_documents({"content": "only once"}) == 1
    assert client.get(f"/api/users/{alice.id}").get_json()["posts_count"] == 1


def test_the_same_key_with_another_body_is_422(client, alice, worker):
    assert post(client, alice, "first body", key="k-2").status_code == 201
    other = post(client, alice, "another body", key="k-2")
    assert other.status_code == 422
    assert other.get_json()["error"]["code"] == "idempotency_mismatch"
    assert worker.repo.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


def test_keys_are_per_user(client, alice, bob, worker):
    assert post(client, alice, "same words", key="shared").status_code == 201
    assert post(client, bob, "same words", key="shared").status_code == 201
    assert worker.repo.db.posts.count_documents({"content": "same words"}) == 2


@pytest.mark.parametrize("key", ["", "a" * 65, "has space", "ünïcode", "semi;colon", "a/b"])
def test_a_malformed_key_is_a_validation_error_and_stores_nothing(client, alice, worker, key):
    response = client.post("/api/posts", json={"content": "x"}, headers=key_headers(alice, key))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"
    assert "Idempotency-Key" in response.get_json()["error"]["details"]
    assert worker.repo.db.posts.count_documents({}) == 0


def test_a_post_whose_reply_was_lost_is_one_post_after_its_retry(client, alice, bob, worker, lose_the_reply):
    assert client.post(f"/api/users/{alice.id}/follow", headers=bob.headers).status_code == 200
    assert client.get(f"/api/users/{bob.id}/feed").get_json()["items"] == []  # cached
    lose_the_reply("posts", "insert_one")
    lost = post(client, alice, "said once", key="retry-me")
    assert lost.status_code == 503 and lost.headers["Retry-After"]
    retried = post(client, alice, "said once", key="retry-me")
    assert retried.status_code == 201
    post_id = retried.get_json()["id"]
    assert worker.repo.db.posts.count_documents({"content": "said once"}) == 1
    assert post(client, alice, "said once", key="retry-me").get_json() == retried.get_json()
    assert [p["id"] for p in client.get(f"/api/users/{bob.id}/feed").get_json()["items"]] == [post_id]
    assert [p["id"] for p in client.get(f"/api/users/{alice.id}/posts").get_json()["items"]] == [post_id]
    assert client.get(f"/api/users/{alice.id}").get_json()["posts_count"] == 1
    counters_equal_their_sources(worker)


@pytest.mark.parametrize("method, lost, write", [
    ("follow", ("follows", "insert_one"),
     lambda client, a, b, post_id: client.post(f"/api/users/{b.id}/follow", headers=a.headers)),
    ("unfollow", ("follows", "delete_one"),
     lambda client, a, b, post_id: client.delete(f"/api/users/{b.id}/follow", headers=a.headers)),
    ("like", ("likes", "insert_one"),
     lambda client, a, b, post_id: client.post(f"/api/posts/{post_id}/like", headers=a.headers)),
    ("unlike", ("likes", "delete_one"),
     lambda client, a, b, post_id: client.delete(f"/api/posts/{post_id}/like", headers=a.headers)),
])
def test_a_write_retried_after_a_lost_reply_leaves_every_counter_equal_to_its_source(
        client, alice, bob, worker, lose_the_reply, method, lost, write):
    post_id = post(client, bob, "counted").get_json()["id"]
    if method in ("unfollow", "unlike"):  # something to undo
        client.post(f"/api/users/{bob.id}/follow", headers=alice.headers)
        client.post(f"/api/posts/{post_id}/like", headers=alice.headers)
    for who in (alice, bob):  # cached before the write
        client.get(f"/api/users/{who.id}")
    client.get(f"/api/posts/{post_id}")
    lose_the_reply(*lost)
    first = write(client, alice, bob, post_id)
    assert first.status_code == 503 and first.headers["Retry-After"]
    retried = write(client, alice, bob, post_id)
    assert retried.status_code == 200
    counters_equal_their_sources(worker)
    db = worker.repo.db
    for who in (alice, bob):  # and what the caches serve is what the store has
        served = client.get(f"/api/users/{who.id}").get_json()
        assert served["followers_count"] == db.users.find_one({"_id": ObjectId(who.id)})["followers_count"]
        assert served["following_count"] == db.users.find_one({"_id": ObjectId(who.id)})["following_count"]
    assert client.get(f"/api/posts/{post_id}").get_json()["likes_count"] == db.likes.count_documents({"post_id": ObjectId(post_id)})


def test_a_move_to_pull_interrupted_by_the_store_is_finished_by_the_next_post(client, make_user, worker):
    worker.fanout.limit = 2
    author = make_user()
    fans = [make_user() for _ in range(2)]
    client.post(f"/api/users/{author.id}/follow", headers=fans[0].headers)
    real = worker.repo.set_fanout

    def stuck_after_both(user_id, mode, current):
        if mode == "pull":
            raise AutoReconnect("test: the store went away between the two steps")
        return real(user_id, mode, current)

    worker.repo.set_fanout = stuck_after_both
    assert client.post(f"/api/users/{author.id}/follow", headers=fans[1].headers).status_code == 200
    assert stored(worker, "users", author.id)["fanout"] == "both"  # stuck in the middle
    worker.repo.set_fanout = real
    assert post(client, author, "the next post").status_code == 201
    assert stored(worker, "users", author.id)["fanout"] == "pull"  # finished
    for fan in fans:
        items = client.get(f"/api/users/{fan.id}/feed").get_json()["items"]
        assert [p["content"] for p in items] == ["the next post"]
