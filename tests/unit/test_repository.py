"""Repository on mongomock: users, follows, posts, likes, listings, indexes, counters."""
import random
import threading
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from feedapp import repository as repository_module
from feedapp.listing import PostCursor, decode_post_cursor, encode_post_cursor
from feedapp.repository import DuplicateError, Repository, shared, utcnow


@pytest.fixture
def frozen_clock(monkeypatch):
    """Freeze the repository's clock; set `.now` to move it."""

    class Clock:
        now = datetime(2026, 11, 23, 10, 15, 30, 123000)

    clock = Clock()
    monkeypatch.setattr(shared, "utcnow", lambda: clock.now)
    return clock


def ids(docs):
    return [doc["_id"] for doc in docs]


def newest_first(docs):
    return sorted(ids(docs), key=lambda i: (_by_id(docs)[i]["created_at"], i), reverse=True)


def _by_id(docs):
    return {doc["_id"]: doc for doc in docs}


# --- users ---------------------------------------------------------------------------------


def test_create_user_stores_normalized_fields(repo):
    doc = repo.create_user("Alice_1", "Alice@Example.COM", "h", "Alice")

    stored = repo.get_user(doc["_id"])
    assert stored["username"] == "Alice_1"
    assert stored["username_lower"] == "alice_1"
    assert stored["email"] == "alice@example.com"
    assert stored["role"] == "user"
    assert (stored["followers_count"], stored["following_count"], stored["posts_count"]) == (0, 0, 0)
    assert stored["created_at"].tzinfo is None
    assert stored["created_at"].microsecond % 1000 == 0


def test_utcnow_is_naive_and_millisecond_precise():
    now = utcnow()
    assert now.tzinfo is None
    assert now.microsecond % 1000 == 0
    assert abs(now - datetime.utcnow()) < timedelta(seconds=5)


@pytest.mark.parametrize("taken", ["alice", "ALICE", "aLiCe"])
def test_username_is_unique_case_insensitively(repo, taken):
    repo.create_user("Alice", "alice@example.com", "h", "Alice")

    with pytest.raises(DuplicateError) as caught:
        repo.create_user(taken, "other@example.com", "h", "x")

    assert caught.value.field == "username"
    assert repo.db.users.count_documents({}) == 1


@pytest.mark.parametrize("taken", ["alice@example.com", "ALICE@example.com"])
def test_email_is_unique(repo, taken):
    repo.create_user("Alice", "alice@example.com", "h", "Alice")

    with pytest.raises(DuplicateError) as caught:
        repo.create_user("bob", taken, "h", "Bob")

    assert caught.value.field == "email"
    assert str(caught.value) == "email already taken"
    assert repo.db.users.count_documents({}) == 1


def test_username_containing_email_is_still_a_username_conflict(repo):
    repo.create_user("email_fan", "a@example.com", "h", "x")

    with pytest.raises(DuplicateError) as caught:
        repo.create_user("EMAIL_FAN", "b@example.com", "h", "x")

    assert caught.value.field == "username"


class _MongoStyleUsers:
    """A users collection that fails the way MongoDB does: the error names the violated key."""

    def __init__(self, key_pattern):
        self.key_pattern = key_pattern

    def insert_one(self, doc):
        raise DuplicateKeyError(
            "E11000 duplicate key error collection: t.users index: x dup key: { ... }",
            11000,
            # the dup key value mentions the other field, to show only keyPattern is trusted
            {"keyPattern": self.key_pattern, "keyValue": {"v": "username or email"}},
        )


@pytest.mark.parametrize("key_pattern, field", [({"email": 1}, "email"), ({"username_lower": 1}, "username")])
def test_duplicate_field_comes_from_mongodb_key_pattern(key_pattern, field):
    repo = Repository(SimpleNamespace(users=_MongoStyleUsers(key_pattern)))
    with pytest.raises(DuplicateError) as caught:
        repo.create_user("email", "username@example.com", "h", "x")
    assert caught.value.field == field


def test_login_by_username_or_email(repo):
    alice = repo.create_user("Alice", "alice@example.com", "h", "Alice")
    repo.create_user("bob", "bob@example.com", "h", "Bob")

    for login in ("Alice", "alice", "ALICE", "alice@example.com", "Alice@Example.Com"):
        assert repo.get_user_by_login(login)["_id"] == alice["_id"], login
    assert repo.get_user_by_login("carol") is None
    assert repo.get_user_by_login("carol@example.com") is None
    assert repo.get_user_by_username("aLICE")["_id"] == alice["_id"]
    assert repo.get_user_by_username("nobody") is None


def test_get_users_leaves_unknown_ids_out(repo, new_user):
    a, b = new_user(), new_user()
    found = repo.get_users([a["_id"], ObjectId(), b["_id"]])
    assert set(found) == {a["_id"], b["_id"]}


def test_update_profile_and_set_role(repo, new_user):
    user = new_user("carol")

    updated = repo.update_profile(user["_id"], {"bio": "hi", "display_name": "Carol"})
    assert (updated["bio"], updated["display_name"]) == ("hi", "Carol")
    assert repo.update_profile(user["_id"], {})["bio"] == "hi"
    assert repo.update_profile(ObjectId(), {"bio": "x"}) is None
    assert repo.set_role("CAROL", "admin")["role"] == "admin"
    assert repo.get_user(user["_id"])["role"] == "admin"


# --- follows -------------------------------------------------------------------------------


def counts(repo, user):
    doc = repo.get_user(user["_id"])
    return doc["followers_count"], doc["following_count"], doc["posts_count"]


def test_follow_and_unfollow_are_idempotent_and_keep_counters(repo, new_user):
    alice, bob = new_user(), new_user()

    assert repo.follow(alice["_id"], bob["_id"]) is True
    assert repo.follow(alice["_id"], bob["_id"]) is False
    assert counts(repo, alice) == (0, 1, 0)
    assert counts(repo, bob) == (1, 0, 0)
    assert repo.following_ids(alice["_id"]) == [bob["_id"]]

    assert repo.unfollow(alice["_id"], bob["_id"]) is True
    assert repo.unfollow(alice["_id"], bob["_id"]) is False
    assert counts(repo, alice) == (0, 0, 0)
    assert counts(repo, bob) == (0, 0, 0)
    assert repo.following_ids(alice["_id"]) == []
    assert repo.db.follows.count_documents({}) == 0


def test_follows_are_directed(repo, new_user):
    alice, bob = new_user(), new_user()
    repo.follow(alice["_id"], bob["_id"])
    assert repo.follow(bob["_id"], alice["_id"]) is True
    assert counts(repo, alice) == (1, 1, 0)
    assert repo.unfollow(bob["_id"], alice["_id"]) is True
    assert counts(repo, alice) == (0, 1, 0)
    assert counts(repo, bob) == (1, 0, 0)


def test_follow_page_lists_newest_follow_first_and_pages_to_the_end(repo, new_user):
    me = new_user()
    others = [new_user() for _ in range(5)]
    for other in others:
        repo.follow(me["_id"], other["_id"])
        repo.follow(other["_id"], me["_id"])

    for direction in ("following", "followers"):
        seen, before = [], None
        while True:
            items, before = repo.follow_page(me["_id"], direction, 2, before)
            seen += ids(items)
            if before is None:
                break
        assert seen == [o["_id"] for o in reversed(others)], direction


# --- posts and likes -----------------------------------------------------------------------


def test_create_post_bumps_posts_count(repo, new_user):
    author = new_user()
    post = repo.create_post(author["_id"], "hello")
    repo.create_post(author["_id"], "again")

    assert repo.get_post(post["_id"])["content"] == "hello"
    assert repo.get_post(post["_id"])["likes_count"] == 0
    assert counts(repo, author) == (0, 0, 2)


def test_like_and_unlike_are_idempotent_and_return_the_count_and_whether_it_changed(repo, new_user):
    author, a, b = new_user(), new_user(), new_user()
    post = repo.create_post(author["_id"], "x")

    assert repo.like(a["_id"], post["_id"]) == (1, True)
    assert repo.like(a["_id"], post["_id"]) == (1, False)
    assert repo.like(b["_id"], post["_id"]) == (2, True)
    assert repo.has_liked(a["_id"], post["_id"]) is True
    assert repo.unlike(a["_id"], post["_id"]) == (1, True)
    assert repo.unlike(a["_id"], post["_id"]) == (1, False)
    assert repo.has_liked(a["_id"], post["_id"]) is False
    assert repo.get_post(post["_id"])["likes_count"] == 1
    assert repo.db.likes.count_documents({"post_id": post["_id"]}) == 1


def test_like_and_unlike_of_a_missing_post_return_none(repo, new_user):
    user = new_user()
    missing = ObjectId()
    assert repo.like(user["_id"], missing) is None
    assert repo.unlike(user["_id"], missing) is None
    assert repo.db.likes.count_documents({}) == 0
    assert repo.db.posts.count_documents({}) == 0


def test_delete_post_removes_its_likes_and_decrements_posts_count(repo, new_user):
    author, fan = new_user(), new_user()
    doomed = repo.create_post(author["_id"], "doomed")
    kept = repo.create_post(author["_id"], "kept")
    repo.like(fan["_id"], doomed["_id"])
    repo.like(author["_id"], doomed["_id"])
    repo.like(fan["_id"], kept["_id"])

    deleted = repo.delete_post(doomed["_id"])

    assert deleted["_id"] == doomed["_id"]
    assert repo.get_post(doomed["_id"]) is None
    assert repo.db.likes.count_documents({"post_id": doomed["_id"]}) == 0
    assert repo.db.likes.count_documents({"post_id": kept["_id"]}) == 1
    assert counts(repo, author) == (0, 0, 1)
    assert repo.delete_post(doomed["_id"]) is None
    assert counts(repo, author) == (0, 0, 1)


# --- timelines and feeds -------------------------------------------------------------------


def test_timeline_is_newest_first(repo, new_user, frozen_clock):
    author, other = new_user(), new_user()
    posts = []
    for minute in (3, 1, 2):
        frozen_clock.now = datetime(2026, 1, 1, 12, minute)
        posts.append(repo.create_post(author["_id"], f"m{minute}"))
    repo.create_post(other["_id"], "not mine")

    timeline = repo.timeline(author["_id"], 10)

    assert [p["content"] for p in timeline] == ["m3", "m2", "m1"]
    assert [p["content"] for p in repo.timeline(author["_id"], 2)] == ["m3", "m2"]


def test_ties_on_created_at_are_broken_by_id_descending(repo, new_user):
    author = new_user()
    when = datetime(2026, 1, 1, 12, 0, 0, 500000)
    post_ids = sorted(ObjectId() for _ in range(6))
    shuffled = post_ids[:]
    random.Random(7).shuffle(shuffled)
    for post_id in shuffled:  # natural (insertion) order differs from id order
        repo.db.posts.insert_one(
            {"_id": post_id, "author_id": author["_id"], "content": "x", "created_at": when, "likes_count": 0}
        )

    assert ids(repo.timeline(author["_id"], 10)) == post_ids[::-1]


def test_feed_holds_posts_of_followed_users_only_newest_first(repo, new_user, frozen_clock):
    me, friend, other_friend, stranger = (new_user() for _ in range(4))
    assert repo.feed(me["_id"], 10) == []
    repo.follow(me["_id"], friend["_id"])
    repo.follow(me["_id"], other_friend["_id"])
    expected = []
    for minute, author in enumerate([friend, stranger, other_friend, me, friend]):
        frozen_clock.now = datetime(2026, 1, 1, 12, minute)
        post = repo.create_post(author["_id"], f"{minute}")
        if author in (friend, other_friend):
            expected.insert(0, post["_id"])

    assert ids(repo.feed(me["_id"], 10)) == expected

    repo.unfollow(me["_id"], friend["_id"])
    assert [p["author_id"] for p in repo.feed(me["_id"], 10)] == [other_friend["_id"]]


def _walk(fetch, limit, encode):
    """Follow cursors to the end; return every item seen, in order."""
    seen, before = [], None
    while True:
        page = fetch(limit, before)
        seen += page
        if len(page) < limit:
            return seen
        before = encode(page[-1])


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_cursor_paging_visits_every_post_exactly_once(repo, new_user, frozen_clock, limit):
    author, follower = new_user(), new_user()
    repo.follow(follower["_id"], author["_id"])
    base = datetime(2026, 1, 1, 12)
    for i in range(20):
        # groups of three posts share one created_at, so page boundaries fall inside ties
        frozen_clock.now = base + timedelta(milliseconds=i // 3)
        repo.create_post(author["_id"], f"p{i}")
    everything = newest_first(list(repo.db.posts.find()))

    through_objects = _walk(
        lambda n, before: repo.timeline(author["_id"], n, before),
        limit,
        lambda doc: PostCursor(doc["created_at"], doc["_id"]),
    )
    through_strings = _walk(
        lambda n, before: repo.feed(follower["_id"], n, before and decode_post_cursor(before)),
        limit,
        encode_post_cursor,
    )

    assert ids(through_objects) == everything
    assert ids(through_strings) == everything


def test_cursor_paging_is_stable_while_new_posts_arrive(repo, new_user, frozen_clock):
    author = new_user()
    base = datetime(2026, 1, 1, 12)
    for i in range(10):
        frozen_clock.now = base + timedelta(milliseconds=i // 2)
        repo.create_post(author["_id"], f"old{i}")
    old = newest_first(list(repo.db.posts.find()))

    seen, before, later = [], None, 0
    while True:
        page = repo.timeline(author["_id"], 3, before)
        seen += ids(page)
        if len(page) < 3:
            break
        before = PostCursor(page[-1]["created_at"], page[-1]["_id"])
        frozen_clock.now = base + timedelta(seconds=1, milliseconds=later)
        repo.create_post(author["_id"], f"new{later}")
        later += 1

    assert seen == old
    assert repo.db.posts.count_documents({}) == 10 + later


# --- explore -------------------------------------------------------------------------------


@pytest.fixture
def corpus(repo, new_user, frozen_clock):
    alice, bob = new_user("alice"), new_user("bob")
    texts = [
        (alice, "Hello World"),
        (bob, "say hello, world!"),
        (alice, "nothing to see"),
        (bob, "regex .* literal"),
        (alice, "a (parenthesis) here"),
        (bob, "HELLO again"),
        (alice, "dotstar sans dots: a-b"),
    ]
    posts = []
    for minute, (author, text) in enumerate(texts):
        frozen_clock.now = datetime(2026, 1, 1, 12, minute)
        posts.append(repo.create_post(author["_id"], text))
    return {"alice": alice, "bob": bob, "posts": posts}


def contents(result):
    items, _total = result
    return [p["content"] for p in items]


def test_explore_without_filters_lists_everything_newest_first(repo, corpus):
    items, total = repo.explore()
    assert total == 7
    assert ids(items) == ids(corpus["posts"])[::-1]


def test_explore_q_is_a_case_insensitive_substring(repo, corpus):
    assert contents(repo.explore(q="hello")) == ["HELLO again", "say hello, world!", "Hello World"]
    assert contents(repo.explore(q="O WOR")) == ["Hello World"]
    assert contents(repo.explore(q="ell")) == ["HELLO again", "say hello, world!", "Hello World"]
    assert repo.explore(q="absent") == ([], 0)


@pytest.mark.parametrize(
    "q, expected",
    [
        (".*", ["regex .* literal"]),
        ("(", ["a (parenthesis) here"]),
        ("(parenthesis)", ["a (parenthesis) here"]),
        ("a.b", []),
        ("[a-z]+", []),
        ("^regex", []),
        ("\\", []),
        ("x|hello", []),
    ],
)
def test_explore_q_treats_regex_metacharacters_literally(repo, corpus, q, expected):
    assert contents(repo.explore(q=q)) == expected


def test_explore_author_filter(repo, corpus):
    bob = corpus["bob"]
    items, total = repo.explore(author_id=bob["_id"])
    assert total == 3
    assert {p["author_id"] for p in items} == {bob["_id"]}
    assert contents(repo.explore(q="hello", author_id=bob["_id"])) == ["HELLO again", "say hello, world!"]
    assert repo.explore(author_id=ObjectId()) == ([], 0)


def test_explore_popular_sorts_by_likes_then_newest(repo, corpus, new_user):
    posts = corpus["posts"]
    fans = [new_user() for _ in range(3)]
    for fan in fans:
        repo.like(fan["_id"], posts[0]["_id"])
    for fan in fans[:2]:
        repo.like(fan["_id"], posts[1]["_id"])
        repo.like(fan["_id"], posts[3]["_id"])

    items, total = repo.explore(sort="popular")

    unliked_newest_first = [posts[i]["_id"] for i in (6, 5, 4, 2)]
    assert ids(items) == [posts[0]["_id"], posts[3]["_id"], posts[1]["_id"]] + unliked_newest_first
    assert [p["likes_count"] for p in items][:3] == [3, 2, 2]
    assert total == 7


def test_explore_pages_and_total(repo, corpus):
    everything = ids(corpus["posts"])[::-1]
    pages = [repo.explore(page=page, page_size=3) for page in (1, 2, 3, 4)]

    assert [ids(items) for items, _ in pages] == [everything[0:3], everything[3:6], everything[6:7], []]
    assert {total for _, total in pages} == {7}
    items, total = repo.explore(q="hello", page=2, page_size=2)
    assert (contents((items, total)), total) == (["Hello World"], 3)


# --- indexes -------------------------------------------------------------------------------


def test_ensure_indexes_is_idempotent(repo, new_user):
    before = {name: repo.db[name].index_information() for name in repository_module.INDEXES}

    repo.ensure_indexes()
    Repository(repo.db).ensure_indexes()

    after = {name: repo.db[name].index_information() for name in repository_module.INDEXES}
    assert after == before
    assert "username_unique" in after["users"] and after["users"]["username_unique"]["unique"]
    new_user("same")
    with pytest.raises(DuplicateError):
        new_user("SAME")


def test_unique_indexes_hold_for_follows_and_likes(repo, new_user):
    a, b = new_user(), new_user()
    post = repo.create_post(b["_id"], "x")
    for _ in range(3):
        repo.follow(a["_id"], b["_id"])
        repo.like(a["_id"], post["_id"])
    assert repo.db.follows.count_documents({}) == 1
    assert repo.db.likes.count_documents({}) == 1


# --- counters under concurrency ------------------------------------------------------------


THREADS = 8
CALLS = {"memory": 400, "wire": 100}  # per thread; over the wire each is a few round trips


def hammer(repo, users, posts, seed, calls):
    """`calls` random follow/unfollow/like/unlike calls among `users` on `posts`."""
    rnd = random.Random(seed)
    for _ in range(calls):
        actor, other = rnd.sample(users, 2)
        post = rnd.choice(posts)
        action = rnd.randrange(4)
        if action == 0:
            repo.follow(actor, other)
        elif action == 1:
            repo.unfollow(actor, other)
        elif action == 2:
            repo.like(actor, post)
        else:
            repo.unlike(actor, post)


def run_threads(target, args_for):
    errors = []
    start = threading.Barrier(THREADS)

    def run(index):
        try:
            start.wait()
            target(*args_for(index))
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def assert_counters_match_documents(repo, users, posts):
    db = repo.db
    for user_id in users:
        doc = repo.get_user(user_id)
        assert doc["followers_count"] == db.follows.count_documents({"followee_id": user_id})
        assert doc["following_count"] == db.follows.count_documents({"follower_id": user_id})
    for post_id in posts:
        assert repo.get_post(post_id)["likes_count"] == db.likes.count_documents({"post_id": post_id})


def test_counters_stay_exact_under_concurrent_calls(request, threadsafe_repo, fast_thread_switching):
    repo = threadsafe_repo
    users = [repo.create_user(f"c{i}", f"c{i}@x.org", "h", "c")["_id"] for i in range(4)]
    posts = [repo.create_post(users[0], f"p{i}")["_id"] for i in range(2)]
    calls = CALLS[request.node.callspec.params["threadsafe_repo"]]

    errors = run_threads(hammer, lambda i: (repo, users, posts, i, calls))

    assert errors == []
    assert_counters_match_documents(repo, users, posts)
    # the workload did something: some follows and likes are left, and counters moved
    assert repo.db.follows.count_documents({}) + repo.db.likes.count_documents({}) > 0


def test_concurrent_first_bumps_of_a_counter_all_count(threadsafe_repo):
    # Every thread bumps the same new counters in the same order, so their upserts race to
    # create each document: real MongoDB may refuse the loser with DuplicateKeyError, and
    # SecantusDB sometimes applies an upsert yet answers None.
    repo = threadsafe_repo
    names = [f"generation{i}" for i in range(25)]
    returned = [[] for _ in range(THREADS)]

    errors = run_threads(lambda i: returned[i].extend(repo.bump_counter(name) for name in names), lambda i: (i,))

    assert errors == []
    assert all(1 <= value <= THREADS for values in returned for value in values)
    assert [repo.counter(name) for name in names] == [THREADS] * len(names)


class _RacingMeta:
    """A meta collection whose first upsert loses a race: refused with DuplicateKeyError
    (nothing written), or applied and answered None (as SecantusDB does)."""

    def __init__(self, first):
        self.first = first
        self.value = 0
        self.upserts = 0

    def find_one_and_update(self, query, update, upsert, return_document):
        self.upserts += 1
        if self.upserts == 1 and self.first == "duplicate":
            raise DuplicateKeyError("E11000 duplicate key error collection: t.meta index: _id_", 11000)
        self.value += update["$inc"]["value"]
        return None if self.upserts == 1 else {"_id": query["_id"], "value": self.value}

    def find_one(self, query):
        return {"_id": query["_id"], "value": self.value}


@pytest.mark.parametrize("first, upserts", [("duplicate", 2), ("none", 1)])
def test_a_counter_upsert_that_loses_a_race_is_retried_or_read_back(first, upserts):
    meta = _RacingMeta(first)
    assert Repository(SimpleNamespace(meta=meta)).bump_counter("generation") == 1
    assert meta.upserts == upserts
