"""Fan-out of new posts to cached home feeds: push below FANOUT_LIMIT, merge at read time above,
and the switch between the two losing nothing (services/fanout.py)."""
import pytest

from feedapp import create_app

from .helpers import walk_pages


@pytest.fixture
def app(config, redis_client):
    app = create_app(config.with_overrides(fanout_limit=3, list_cap=10))
    app.extensions["feedapp"].start()
    yield app
    app.extensions["feedapp"].close()


def feed_ids(client, user):
    response = client.get("/api/feed?limit=50", headers=user.headers)
    assert response.status_code == 200
    return [p["id"] for p in response.get_json()["items"]], response.headers["X-Cache"]


def post(client, user, text):
    response = client.post("/api/posts", json={"content": text}, headers=user.headers)
    assert response.status_code == 201
    return response.get_json()["id"]


def follow(client, user, target):
    assert client.post(f"/api/users/{target.id}/follow", headers=user.headers).status_code == 200


def test_push_author_post_is_written_through_to_cached_feeds(client, make_user, worker):
    author, reader = make_user(), make_user()
    follow(client, reader, author)
    first = post(client, author, "one")
    feed_ids(client, reader)
    assert feed_ids(client, reader) == ([first], "L1")
    second = post(client, author, "two")
    assert feed_ids(client, reader)[0] == [second, first]
    assert worker.repo.fanout_state(worker.repo.get_user_by_username(author.username)["_id"])[0] == "push"


def test_crossing_the_limit_moves_the_author_to_pull_without_losing_a_post(client, make_user, worker):
    author = make_user()
    readers = [make_user() for _ in range(3)]
    old = post(client, author, "before")
    follow(client, readers[0], author)
    follow(client, readers[1], author)
    assert feed_ids(client, readers[0])[0] == [old]  # cached while the author is push
    follow(client, readers[2], author)  # the third follower crosses FANOUT_LIMIT=3
    author_id = worker.repo.get_user_by_username(author.username)["_id"]
    assert worker.repo.fanout_state(author_id) == ("pull", 3)
    new = post(client, author, "after")
    for reader in readers:
        assert feed_ids(client, reader)[0] == [new, old]
    newer = post(client, author, "later")  # pull: only the author's timeline is written
    for reader in readers:
        assert feed_ids(client, reader)[0] == [newer, new, old]


def test_a_feed_merges_pull_authors_with_pushed_posts_in_order(client, make_user):
    star, friend, reader = make_user(), make_user(), make_user()
    for fan in [make_user() for _ in range(3)]:
        follow(client, fan, star)
    follow(client, reader, star)
    follow(client, reader, friend)
    ids = []
    for i in range(6):
        ids.insert(0, post(client, star if i % 2 else friend, f"p{i}"))
    feed_ids(client, reader)
    assert feed_ids(client, reader) == (ids, "L1")


@pytest.mark.parametrize("limit", [1, 3, 4])
def test_pages_of_a_feed_merging_pull_authors_visit_every_post_once_in_order(client, make_user, limit):
    """Lists longer than LIST_CAP (10): pages cut from the merge down to its floor, then from the
    store, each cursor an entry of the merge."""
    stars, friend, reader = [make_user(), make_user()], make_user(), make_user()
    for star in stars:
        for fan in [make_user() for _ in range(3)]:
            follow(client, fan, star)  # FANOUT_LIMIT=3: pull
        follow(client, reader, star)
    follow(client, reader, friend)
    ids = []
    for i in range(24):
        ids.insert(0, post(client, (stars[0], friend, stars[1])[i % 3], f"p{i}"))
    for _ in range(2):  # from the store and cached lists, then from what the first walk cached
        assert walk_pages(client, "/api/feed", limit, headers=reader.headers) == ids


def test_a_post_pushed_to_a_feed_rebuilt_after_an_unfollow_is_taken_back(client, make_user, worker):
    author, reader = make_user(), make_user()
    follow(client, reader, author)
    real = worker.repo.follower_ids
    stale = [worker.repo.get_user_by_username(reader.username)["_id"]]
    calls = []

    def followers_read_before_the_unfollow(author_id, limit=0):
        calls.append(author_id)
        return stale if len(calls) == 1 else real(author_id, limit)

    assert client.delete(f"/api/users/{author.id}/follow", headers=reader.headers).status_code == 200
    assert feed_ids(client, reader)[0] == []  # rebuilt (and cached) without the author
    worker.repo.follower_ids = followers_read_before_the_unfollow
    post(client, author, "must not reach the ex-follower")
    assert feed_ids(client, reader)[0] == []
