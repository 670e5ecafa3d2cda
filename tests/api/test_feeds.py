"""Timelines and home feeds: GET /api/users/<id>/posts, /api/users/<id>/feed, /api/feed."""
import base64
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from .helpers import (
    BAD_CURSORS,
    BAD_IDS,
    BAD_LIMITS,
    TIERS,
    UNKNOWN_ID,
    assert_error,
    assert_page,
    assert_post,
    assert_validation_error,
    bearer,
    create_post,
    walk_pages,
)

_HOUR_AGO = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)
SAME_TIME = _HOUR_AGO.replace(microsecond=_HOUR_AGO.microsecond // 1000 * 1000)


def follow(client, who, whom):
    assert client.post(f"/api/users/{whom.id}/follow", headers=who.headers).status_code == 200


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in assert_page(response.get_json())["items"]]


def insert_posts(worker, author, times):
    """Posts of `author` with the given created_at values, straight into the store."""
    docs = [
        {"author_id": ObjectId(author.id), "content": f"p{i}", "created_at": t, "likes_count": 0}
        for i, t in enumerate(times)
    ]
    worker.repo.db.posts.insert_many(docs)
    return [str(doc["_id"]) for doc in docs]


def newest_first(worker, post_ids):
    docs = worker.repo.db.posts.find({"_id": {"$in": [ObjectId(i) for i in post_ids]}})
    return [str(d["_id"]) for d in sorted(docs, key=lambda d: (d["created_at"], d["_id"]), reverse=True)]


# --- timelines --------------------------------------------------------------------------------


def test_timeline_lists_the_users_posts_newest_first(client, alice, bob):
    first, second = create_post(client, alice, "one"), create_post(client, alice, "two")
    create_post(client, bob, "not mine")
    response = client.get(f"/api/users/{alice.id}/posts")
    assert ids(response) == [second["id"], first["id"]]
    for item in response.get_json()["items"]:
        assert_post(item)
    assert response.get_json()["next_cursor"] is None


def test_timeline_items_are_full_posts(client, alice):
    post = create_post(client, alice)
    assert client.get(f"/api/users/{alice.id}/posts").get_json()["items"] == [post]


def test_timeline_of_user_without_posts_is_empty(client, alice):
    assert client.get(f"/api/users/{alice.id}/posts").get_json() == {"items": [], "next_cursor": None}


def test_timeline_default_limit_is_20(client, alice, worker):
    insert_posts(worker, alice, [SAME_TIME - timedelta(seconds=i) for i in range(25)])
    body = client.get(f"/api/users/{alice.id}/posts").get_json()
    assert len(body["items"]) == 20 and body["next_cursor"]


def test_timeline_paginates_over_posts_with_equal_timestamps(client, alice, worker):
    posted = insert_posts(worker, alice, [SAME_TIME] * 7 + [SAME_TIME - timedelta(milliseconds=1)] * 3)
    visited = walk_pages(client, f"/api/users/{alice.id}/posts", limit=3)
    assert visited == newest_first(worker, posted)


@pytest.mark.parametrize("limit", [1, 2, 4, 9, 10, 11, 100])
def test_timeline_pagination_visits_every_post_once_whatever_the_limit(client, alice, worker, limit):
    times = [SAME_TIME - timedelta(milliseconds=i // 3) for i in range(10)]
    posted = insert_posts(worker, alice, times)
    assert walk_pages(client, f"/api/users/{alice.id}/posts", limit=limit) == newest_first(worker, posted)


def test_timeline_pagination_is_stable_while_new_posts_arrive(client, alice, worker):
    posted = insert_posts(worker, alice, [SAME_TIME] * 4 + [SAME_TIME - timedelta(seconds=1)] * 4)
    visited = walk_pages(
        client, f"/api/users/{alice.id}/posts", limit=3, between_pages=lambda: create_post(client, alice, "new")
    )
    assert visited == newest_first(worker, posted)


def test_timeline_new_post_heads_the_first_page(client, alice, worker):
    insert_posts(worker, alice, [SAME_TIME] * 3)
    client.get(f"/api/users/{alice.id}/posts")
    post = create_post(client, alice)
    assert ids(client.get(f"/api/users/{alice.id}/posts?limit=1"))[0] == post["id"]


def test_timeline_carries_x_cache_and_etag(client, alice):
    response = client.get(f"/api/users/{alice.id}/posts")
    assert response.headers["X-Cache"] in TIERS and response.headers.get("ETag")


def test_timeline_first_read_comes_from_l3(client, alice):
    create_post(client, alice)
    assert client.get(f"/api/users/{alice.id}/posts").headers["X-Cache"] == "L3"


def test_timeline_matching_if_none_match_is_304_without_body(client, alice):
    create_post(client, alice)
    etag = client.get(f"/api/users/{alice.id}/posts").headers["ETag"]
    response = client.get(f"/api/users/{alice.id}/posts", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.get_data() == b""


def test_timeline_etag_changes_after_a_new_post(client, alice):
    etag = client.get(f"/api/users/{alice.id}/posts").headers["ETag"]
    create_post(client, alice)
    assert client.get(f"/api/users/{alice.id}/posts", headers={"If-None-Match": etag}).status_code == 200


def test_timeline_of_unknown_user_is_404(client):
    assert_error(client.get(f"/api/users/{UNKNOWN_ID}/posts"), 404, "not_found")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_timeline_malformed_id_is_400_invalid_id(client, bad):
    assert_error(client.get(f"/api/users/{bad}/posts"), 400, "invalid_id")


# --- home feeds -------------------------------------------------------------------------------


def test_feed_shows_posts_of_followed_users_only_newest_first(client, alice, bob, carol, make_user):
    stranger = make_user()
    follow(client, alice, bob)
    follow(client, alice, carol)
    b1 = create_post(client, bob, "b1")
    create_post(client, stranger, "noise")
    create_post(client, alice, "own post")
    c1 = create_post(client, carol, "c1")
    expected = [c1["id"], b1["id"]]
    assert ids(client.get(f"/api/users/{alice.id}/feed")) == expected
    assert ids(client.get("/api/feed", headers=alice.headers)) == expected


def test_feed_items_are_full_posts(client, alice, bob):
    follow(client, alice, bob)
    post = create_post(client, bob)
    assert client.get("/api/feed", headers=alice.headers).get_json()["items"] == [post]


def test_feed_without_follows_is_empty(client, alice, bob):
    create_post(client, bob)
    assert client.get("/api/feed", headers=alice.headers).get_json() == {"items": [], "next_cursor": None}


def test_new_post_heads_every_followers_feed_at_once(client, alice, bob, carol):
    follow(client, bob, alice)
    follow(client, carol, alice)
    create_post(client, alice, "old")
    client.get("/api/feed", headers=bob.headers)
    client.get(f"/api/users/{carol.id}/feed")
    post = create_post(client, alice, "new")
    assert ids(client.get("/api/feed", headers=bob.headers))[0] == post["id"]
    assert ids(client.get(f"/api/users/{carol.id}/feed"))[0] == post["id"]


def test_follow_shows_in_the_feed_on_the_next_read(client, alice, bob):
    post = create_post(client, bob)
    assert ids(client.get("/api/feed", headers=alice.headers)) == []
    follow(client, alice, bob)
    assert ids(client.get("/api/feed", headers=alice.headers)) == [post["id"]]


def test_unfollow_shows_in_the_feed_on_the_next_read(client, alice, bob):
    follow(client, alice, bob)
    create_post(client, bob)
    assert len(ids(client.get(f"/api/users/{alice.id}/feed"))) == 1
    client.delete(f"/api/users/{bob.id}/follow", headers=alice.headers)
    assert ids(client.get(f"/api/users/{alice.id}/feed")) == []
    assert ids(client.get("/api/feed", headers=alice.headers)) == []


def test_feed_paginates_over_equal_timestamps_while_new_posts_arrive(client, alice, bob, carol, worker):
    follow(client, alice, bob)
    follow(client, alice, carol)
    posted = insert_posts(worker, bob, [SAME_TIME] * 5) + insert_posts(worker, carol, [SAME_TIME] * 5)

    def arrive():
        create_post(client, bob, "new")
        create_post(client, carol, "new")

    visited = walk_pages(client, "/api/feed", limit=4, headers=alice.headers, between_pages=arrive)
    assert visited == newest_first(worker, posted)


def test_user_feed_pagination_visits_every_post_once(client, alice, bob, worker):
    follow(client, alice, bob)
    posted = insert_posts(worker, bob, [SAME_TIME - timedelta(milliseconds=i % 2) for i in range(9)])
    assert walk_pages(client, f"/api/users/{alice.id}/feed", limit=2) == newest_first(worker, posted)


@pytest.mark.parametrize("cached", [False, True], ids=["read once", "read twice"])
def test_a_page_that_ends_with_the_last_post_has_no_next_cursor(client, alice, bob, carol, worker, cached):
    follow(client, alice, bob)
    follow(client, alice, carol)
    insert_posts(worker, bob, [SAME_TIME - timedelta(seconds=i) for i in range(3)])
    insert_posts(worker, carol, [SAME_TIME - timedelta(seconds=i, milliseconds=500) for i in range(3)])
    for url in (f"/api/users/{alice.id}/feed?limit=6", f"/api/users/{bob.id}/posts?limit=3"):
        if cached:
            client.get(url)
        body = client.get(url).get_json()
        assert len(body["items"]) == int(url.rsplit("=", 1)[1]) and body["next_cursor"] is None, url
        page = client.get(url.replace("=6", "=5").replace("=3", "=2")).get_json()
        assert page["next_cursor"], url


def test_my_feed_is_the_callers_feed(client, alice, bob):
    follow(client, bob, alice)
    create_post(client, alice)
    assert ids(client.get("/api/feed", headers=alice.headers)) == []
    assert len(ids(client.get("/api/feed", headers=bob.headers))) == 1


@pytest.mark.parametrize("url", ["/api/feed", "/api/users/{id}/feed"])
def test_feed_carries_x_cache_and_etag(client, alice, url):
    response = client.get(url.format(id=alice.id), headers=alice.headers)
    assert response.headers["X-Cache"] in TIERS and response.headers.get("ETag")


@pytest.mark.parametrize("url", ["/api/feed", "/api/users/{id}/feed"])
def test_feed_first_read_comes_from_l3(client, alice, url):
    assert client.get(url.format(id=alice.id), headers=alice.headers).headers["X-Cache"] == "L3"


@pytest.mark.parametrize("url", ["/api/feed", "/api/users/{id}/feed"])
def test_feed_matching_if_none_match_is_304_without_body(client, alice, bob, url):
    follow(client, alice, bob)
    create_post(client, bob)
    url = url.format(id=alice.id)
    etag = client.get(url, headers=alice.headers).headers["ETag"]
    response = client.get(url, headers={**alice.headers, "If-None-Match": etag})
    assert response.status_code == 304 and response.get_data() == b""


def test_my_feed_varies_by_authorization(client, alice):
    assert "Authorization" in client.get("/api/feed", headers=alice.headers).headers.get("Vary", "")


def test_my_feed_without_token_is_401(client):
    assert_error(client.get("/api/feed"), 401, "unauthorized")


def test_user_feed_of_unknown_user_is_404(client):
    assert_error(client.get(f"/api/users/{UNKNOWN_ID}/feed"), 404, "not_found")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_user_feed_malformed_id_is_400_invalid_id(client, bad):
    assert_error(client.get(f"/api/users/{bad}/feed"), 400, "invalid_id")


# --- query validation for every post listing --------------------------------------------------

LISTINGS = ["/api/users/{id}/posts", "/api/users/{id}/feed", "/api/feed"]


@pytest.mark.parametrize("url", LISTINGS)
@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_listing_bad_limit_is_400(client, alice, url, limit):
    response = client.get(url.format(id=alice.id) + f"?limit={limit}", headers=alice.headers)
    assert_validation_error(response, "limit")


@pytest.mark.parametrize("url", LISTINGS)
@pytest.mark.parametrize("limit", ["1", "100"])
def test_listing_limit_bounds_are_accepted(client, alice, url, limit):
    assert client.get(url.format(id=alice.id) + f"?limit={limit}", headers=alice.headers).status_code == 200


@pytest.mark.parametrize("url", LISTINGS)
@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_listing_garbage_cursor_is_400(client, alice, url, cursor):
    response = client.get(url.format(id=alice.id) + f"?before={cursor}", headers=alice.headers)
    assert_validation_error(response, "before")


def b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        b64("f" + UNKNOWN_ID),  # a follow-list cursor
        b64("p-5." + UNKNOWN_ID),
        b64("p12.zzzz"),
        b64("p12"),
        b64("p1e9." + UNKNOWN_ID),
        b64("p" + "9" * 16 + "." + UNKNOWN_ID),
        b64("p\u0663." + UNKNOWN_ID),
    ],
)
def test_listing_rejects_forged_cursors(client, alice, cursor):
    assert_validation_error(client.get(f"/api/users/{alice.id}/posts?before={cursor}"), "before")


@pytest.mark.parametrize("url", LISTINGS)
def test_listing_cursor_beyond_year_9999_is_400_not_500(client, alice, url):
    cursor = b64("p" + "9" * 15 + "." + UNKNOWN_ID)
    response = client.get(url.format(id=alice.id) + f"?before={cursor}", headers=alice.headers)
    assert_validation_error(response, "before")


def test_listing_cursor_far_in_the_past_is_an_empty_page(client, alice):
    create_post(client, alice)
    body = client.get(f"/api/users/{alice.id}/posts?before={b64('p0.' + UNKNOWN_ID)}").get_json()
    assert body == {"items": [], "next_cursor": None}


def test_listing_ignores_unknown_query_parameters(client, alice):
    post = create_post(client, alice)
    assert ids(client.get(f"/api/users/{alice.id}/posts?utm_source=x&_=123")) == [post["id"]]


def test_my_feed_rejects_a_token_of_the_wrong_kind(client, alice):
    assert_error(client.get("/api/feed", headers=bearer(alice.refresh_token)), 401, "unauthorized")
