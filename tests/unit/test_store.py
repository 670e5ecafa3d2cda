"""The document stores of feedapp.infra.store: the embedded store (feedapp.infra.docstore) and `memory://`.

The cross-process test is the proof that the embedded store's writes are exact across gunicorn
workers: updates read, change and write back documents in Python, so without its write
transactions concurrent `$inc`s from several processes get lost and two processes can both
insert the same unique username.
"""
import random
import threading
import traceback

import pytest

from feedapp.config import Config
from feedapp.infra import store
from feedapp.repository import DuplicateError, Repository

from .forked import run_forked
from .test_repository import assert_counters_match_documents

PROCESSES = 4
ROUNDS = 12  # duplicate-insert rounds; every process takes part in each
OPS_PER_ROUND = 12  # counter operations of each process between two rounds


def open_repo(path):
    repo = Repository(store.EmbeddedDatabase(path, "feedapp"))
    repo.ensure_indexes()
    return repo


def test_embedded_data_survives_a_new_database_on_the_same_path(tmp_path):
    path = tmp_path / "store"
    first = open_repo(path)
    alice = first.create_user("Alice", "alice@example.com", "h", "Alice")
    bob = first.create_user("bob", "bob@example.com", "h", "Bob")
    first.follow(alice["_id"], bob["_id"])
    post = first.create_post(bob["_id"], "persisted")
    first.like(alice["_id"], post["_id"])
    first.db.close()

    second = open_repo(path)

    stored = second.get_user_by_login("ALICE@example.com")
    assert stored == {**alice, "following_count": 1}
    assert second.get_user(bob["_id"])["followers_count"] == 1
    assert second.get_user(bob["_id"])["posts_count"] == 1
    assert second.timeline(bob["_id"], 10) == [{**post, "likes_count": 1}]
    assert second.following_ids(alice["_id"]) == [bob["_id"]]
    assert second.has_liked(alice["_id"], post["_id"])
    # the unique indexes came back from disk too
    with pytest.raises(DuplicateError) as caught:
        second.create_user("ALICE", "new@example.com", "h", "x")
    assert caught.value.field == "username"
    with pytest.raises(DuplicateError) as caught:
        second.create_user("carol", "BOB@example.com", "h", "x")
    assert caught.value.field == "email"
    assert second.follow(alice["_id"], bob["_id"]) is False


def _worker(db, index, users, posts, barrier, results):
    """One 'gunicorn worker': counter operations, and a duplicate insert every round."""
    try:
        repo = Repository(db)  # db was opened by the parent before the fork
        rnd = random.Random(index)
        outcome = {"usernames": [], "emails": [], "email_errors": []}
        for round_ in range(ROUNDS):
            barrier.wait(timeout=30)
            try:
                repo.create_user(f"dup{round_}", f"dup{round_}-{index}@example.com", "h", "d")
                outcome["usernames"].append(round_)
            except DuplicateError as err:
                assert err.field == "username", err.field
            try:
                repo.create_user(f"u{round_}_{index}", f"same{round_}@example.com", "h", "d")
                outcome["emails"].append(round_)
            except DuplicateError as err:
                outcome["email_errors"].append(err.field)
            for _ in range(OPS_PER_ROUND):
                db.counters.update_one({"_id": "hits"}, {"$inc": {"n": 1}})
                actor, other = rnd.sample(users, 2)
                (repo.follow if rnd.random() < 0.5 else repo.unfollow)(actor, other)
                post = rnd.choice(posts)
                (repo.like if rnd.random() < 0.5 else repo.unlike)(actor, post)
        results.put((index, outcome))
    except BaseException:  # noqa: BLE001 - the parent reports it
        barrier.abort()  # don't leave the others waiting for this one
        results.put((index, traceback.format_exc()))


def test_cross_process_counters_and_unique_indexes_are_exact(tmp_path):
    repo = open_repo(tmp_path / "store")
    users = [repo.create_user(f"member{i}", f"m{i}@example.com", "h", "m")["_id"] for i in range(4)]
    posts = [repo.create_post(users[0], f"post{i}")["_id"] for i in range(2)]
    repo.db.counters.insert_one({"_id": "hits", "n": 0})
    # The children inherit this very EmbeddedDatabase (connections already opened), as
    # gunicorn workers inherit what the master opened: each must open its own.
    outcomes, exit_codes = run_forked(_worker, lambda i: (repo.db, i, users, posts), PROCESSES, timeout=60)

    failures = [o for o in outcomes.values() if isinstance(o, str) and "BrokenBarrierError" not in o]
    assert not failures, "\n".join(failures)
    assert all(isinstance(o, dict) for o in outcomes.values()), outcomes
    assert exit_codes == [0] * PROCESSES
    db = repo.db
    assert db.counters.find_one({"_id": "hits"})["n"] == PROCESSES * ROUNDS * OPS_PER_ROUND
    assert_counters_match_documents(repo, users, posts)
    # exactly one process won each duplicate username and each duplicate email
    won_usernames = sorted(r for o in outcomes.values() for r in o["usernames"])
    won_emails = sorted(r for o in outcomes.values() for r in o["emails"])
    assert won_usernames == list(range(ROUNDS))
    assert won_emails == list(range(ROUNDS))
    assert {f for o in outcomes.values() for f in o["email_errors"]} == {"email"}
    for round_ in range(ROUNDS):
        assert db.users.count_documents({"username_lower": f"dup{round_}"}) == 1
        assert db.users.count_documents({"email": f"same{round_}@example.com"}) == 1


def test_memory_store_serializes_writes_across_threads(fast_thread_switching):
    db = store.connect(Config(mongo_uri="memory://", mongo_db="t"))
    db.counters.insert_one({"_id": "hits", "n": 0})
    threads, per_thread = 8, 1000

    def bump():
        for _ in range(per_thread):
            db.counters.update_one({"_id": "hits"}, {"$inc": {"n": 1}})

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert db.counters.find_one({"_id": "hits"})["n"] == threads * per_thread


def test_embedded_store_is_exact_across_threads_of_one_process(tmp_path, fast_thread_switching):
    repo = open_repo(tmp_path / "store")
    users = [repo.create_user(f"t{i}", f"t{i}@example.com", "h", "t")["_id"] for i in range(4)]
    post = repo.create_post(users[0], "p")["_id"]
    failures = []

    def work(seed):
        rnd = random.Random(seed)
        try:
            for _ in range(60):
                actor, other = rnd.sample(users, 2)
                (repo.follow if rnd.random() < 0.5 else repo.unfollow)(actor, other)
                (repo.like if rnd.random() < 0.5 else repo.unlike)(actor, post)
        except BaseException:  # noqa: BLE001 - reported below
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures, "\n".join(failures)
    db = repo.db
    for user_id in users:
        doc = repo.get_user(user_id)
        assert doc["followers_count"] == db.follows.count_documents({"followee_id": user_id})
        assert doc["following_count"] == db.follows.count_documents({"follower_id": user_id})
    assert repo.get_post(post)["likes_count"] == db.likes.count_documents({"post_id": post})


def test_sqlite_failures_of_the_embedded_store_surface_as_pymongo_connection_errors(tmp_path):
    import sqlite3

    from pymongo.errors import AutoReconnect

    db = store.EmbeddedDatabase(tmp_path / "store", "feedapp")
    db.users.insert_one({"_id": 1})
    db.connection().close()  # this thread's connection to the file is gone (I/O error)
    with pytest.raises(AutoReconnect) as caught:
        db.users.find_one({"_id": 1})
    assert isinstance(caught.value.__cause__, sqlite3.Error)
