"""POST /api/posts, GET and DELETE /api/posts/<id>, POST/DELETE /api/posts/<id>/like."""
import pytest

from .helpers import (
    BAD_IDS,
    JUNK,
    NOT_OBJECTS,
    TIERS,
    UNKNOWN_ID,
    assert_error,
    assert_post,
    assert_validation_error,
    big_body,
    create_post,
    raw_json,
)


def posts_count_of(client, user):
    return client.get(f"/api/users/{user.id}").get_json()["posts_count"]


# --- create -----------------------------------------------------------------------------------


def test_create_post_returns_201_post(client, alice):
    response = client.post("/api/posts", json={"content": "hello world"}, headers=alice.headers)
    assert response.status_code == 201
    body = assert_post(response.get_json())
    assert body["content"] == "hello world" and body["likes_count"] == 0
    assert body["author"] == {"id": alice.id, "username": "alice", "display_name": "alice"}


def test_create_post_trims_content(client, alice):
    assert create_post(client, alice, "  \n hi there \t ")["content"] == "hi there"


def test_create_post_accepts_500_characters_after_trimming(client, alice):
    assert create_post(client, alice, "   " + "x" * 500 + "   ")["content"] == "x" * 500


def test_create_post_keeps_mongo_looking_text_as_text(client, alice):
    post = create_post(client, alice, '{"$ne": null}')
    assert client.get(f"/api/posts/{post['id']}").get_json()["content"] == '{"$ne": null}'


def test_create_post_increments_posts_count(client, alice):
    create_post(client, alice)
    create_post(client, alice)
    assert posts_count_of(client, alice) == 2


def test_new_post_heads_the_authors_timeline_at_once(client, alice):
    create_post(client, alice, "first")
    client.get(f"/api/users/{alice.id}/posts")
    post = create_post(client, alice, "second")
    assert client.get(f"/api/users/{alice.id}/posts").get_json()["items"][0]["id"] == post["id"]


def test_new_post_is_written_through_to_the_cached_timeline_not_rebuilt(client, alice, worker):
    first = create_post(client, alice, "first")
    client.get(f"/api/users/{alice.id}/posts")  # the timeline is cached from here on
    rebuilt = worker.stats.counted()["l3.reads.timeline"]
    second = create_post(client, alice, "second")
    items = client.get(f"/api/users/{alice.id}/posts").get_json()["items"]
    assert [p["id"] for p in items] == [second["id"], first["id"]]
    assert worker.stats.counted()["l3.reads.timeline"] == rebuilt


def test_new_post_does_not_fill_its_authors_profile_into_the_caches(client, alice, worker):
    create_post(client, alice, "first")
    loads = worker.stats.counted()["l3.reads.profile"]
    create_post(client, alice, "second")  # its commit would evict the profile again at once
    assert worker.stats.counted()["l3.reads.profile"] == loads
    assert posts_count_of(client, alice) == 2


@pytest.mark.parametrize(
    "body, field",
    [
        ({"content": ""}, "content"),
        ({"content": "   \n\t "}, "content"),
        ({"content": "x" * 501}, "content"),
        ({"content": " " + "x" * 501 + " "}, "content"),
        ({}, "content"),
        ({"content": "ok", "author_id": "0123456789abcdef01234567"}, "author_id"),
        ({"content": "ok", "likes_count": 100}, "likes_count"),
        ({"content": "ok", "$where": "1"}, "$where"),
    ],
)
def test_create_post_rejects_invalid_bodies_and_creates_nothing(client, alice, posts_count, body, field):
    assert_validation_error(client.post("/api/posts", json=body, headers=alice.headers), field)
    assert posts_count() == 0 and posts_count_of(client, alice) == 0


@pytest.mark.parametrize("value", JUNK, ids=repr)
def test_create_post_rejects_junk_content_types(client, alice, posts_count, value):
    assert_validation_error(client.post("/api/posts", json={"content": value}, headers=alice.headers), "content")
    assert posts_count() == 0


@pytest.mark.parametrize("text", NOT_OBJECTS, ids=lambda t: repr(t)[:30])
def test_create_post_rejects_non_object_bodies(client, alice, posts_count, text):
    assert_error(raw_json(client, "POST", "/api/posts", text, headers=alice.headers), 400, "invalid_json")
    assert posts_count() == 0


def test_create_post_rejects_lone_surrogates_without_500(client, alice, posts_count):
    response = raw_json(client, "POST", "/api/posts", '{"content": "\\ud800"}', headers=alice.headers)
    assert response.status_code == 400
    assert posts_count() == 0


def test_create_post_accepts_any_valid_unicode(client, alice):
    text = "héllo 👋 \u0000 \u202e ñ 漢字"
    assert create_post(client, alice, text)["content"] == text


def test_create_post_rejects_bodies_over_64_kib(client, alice, posts_count):
    response = raw_json(client, "POST", "/api/posts", big_body(), headers=alice.headers)
    assert_error(response, 413, "payload_too_large")
    assert posts_count() == 0


def test_create_post_without_token_is_401_and_creates_nothing(client, posts_count):
    assert_error(client.post("/api/posts", json={"content": "hi"}), 401, "unauthorized")
    assert posts_count() == 0


# --- read -------------------------------------------------------------------------------------


def test_get_post_returns_the_post(client, alice):
    post = create_post(client, alice, "read me")
    response = client.get(f"/api/posts/{post['id']}")
    assert response.status_code == 200
    assert assert_post(response.get_json()) == post


def test_get_post_carries_x_cache_and_etag(client, alice):
    post = create_post(client, alice)
    response = client.get(f"/api/posts/{post['id']}")
    assert response.headers["X-Cache"] in TIERS and response.headers.get("ETag")


def test_first_read_of_a_post_comes_from_l3(client, alice):
    post = create_post(client, alice)
    assert client.get(f"/api/posts/{post['id']}").headers["X-Cache"] == "L3"


def test_get_post_matching_if_none_match_is_304_without_body(client, alice):
    post = create_post(client, alice)
    etag = client.get(f"/api/posts/{post['id']}").headers["ETag"]
    response = client.get(f"/api/posts/{post['id']}", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.get_data() == b""


def test_get_post_etag_changes_when_likes_change(client, alice, bob):
    post = create_post(client, alice)
    etag = client.get(f"/api/posts/{post['id']}").headers["ETag"]
    client.post(f"/api/posts/{post['id']}/like", headers=bob.headers)
    response = client.get(f"/api/posts/{post['id']}", headers={"If-None-Match": etag})
    assert response.status_code == 200 and response.get_json()["likes_count"] == 1


def test_get_unknown_post_is_404(client):
    assert_error(client.get(f"/api/posts/{UNKNOWN_ID}"), 404, "not_found")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_get_malformed_post_id_is_400_invalid_id(client, bad):
    assert_error(client.get(f"/api/posts/{bad}"), 400, "invalid_id")


# --- delete -----------------------------------------------------------------------------------


def delete(client, user, post):
    return client.delete(f"/api/posts/{post['id']}", headers=user.headers)


def test_author_deletes_post_with_204_and_no_body(client, alice):
    post = create_post(client, alice)
    response = delete(client, alice, post)
    assert response.status_code == 204 and response.get_data() == b""


def test_deleted_post_is_404(client, alice):
    post = create_post(client, alice)
    client.get(f"/api/posts/{post['id']}")
    delete(client, alice, post)
    assert_error(client.get(f"/api/posts/{post['id']}"), 404, "not_found")


def test_delete_decrements_posts_count(client, alice):
    post = create_post(client, alice)
    create_post(client, alice)
    delete(client, alice, post)
    assert posts_count_of(client, alice) == 1


def test_deleting_twice_is_404_and_counts_once(client, alice):
    post = create_post(client, alice)
    delete(client, alice, post)
    assert_error(delete(client, alice, post), 404, "not_found")
    assert posts_count_of(client, alice) == 0


def test_non_author_delete_is_403_and_post_survives(client, alice, bob):
    post = create_post(client, alice)
    assert_error(delete(client, bob, post), 403, "forbidden")
    assert client.get(f"/api/posts/{post['id']}").status_code == 200
    assert posts_count_of(client, alice) == 1


def test_admin_may_delete_any_post(client, alice, admin):
    post = create_post(client, alice)
    assert delete(client, admin, post).status_code == 204
    assert_error(client.get(f"/api/posts/{post['id']}"), 404)
    assert posts_count_of(client, alice) == 0


def test_delete_unknown_post_is_404(client, alice):
    assert_error(client.delete(f"/api/posts/{UNKNOWN_ID}", headers=alice.headers), 404, "not_found")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_delete_malformed_id_is_400_invalid_id(client, alice, bad):
    assert_error(client.delete(f"/api/posts/{bad}", headers=alice.headers), 400, "invalid_id")


def test_delete_without_token_is_401_and_post_survives(client, alice):
    post = create_post(client, alice)
    assert_error(client.delete(f"/api/posts/{post['id']}"), 401, "unauthorized")
    assert client.get(f"/api/posts/{post['id']}").status_code == 200


def test_deleted_post_leaves_the_timeline(client, alice):
    keep, gone = create_post(client, alice, "keep"), create_post(client, alice, "gone")
    client.get(f"/api/users/{alice.id}/posts")
    delete(client, alice, gone)
    items = client.get(f"/api/users/{alice.id}/posts").get_json()["items"]
    assert [item["id"] for item in items] == [keep["id"]]


def test_deleted_post_leaves_followers_feeds(client, alice, bob):
    client.post(f"/api/users/{alice.id}/follow", headers=bob.headers)
    post = create_post(client, alice)
    client.get("/api/feed", headers=bob.headers)
    client.get(f"/api/users/{bob.id}/feed")
    delete(client, alice, post)
    assert client.get("/api/feed", headers=bob.headers).get_json()["items"] == []
    assert client.get(f"/api/users/{bob.id}/feed").get_json()["items"] == []


def test_deleted_post_leaves_explore_at_once(client, alice):
    post = create_post(client, alice, "findable words")
    client.get("/api/posts")
    client.get("/api/posts?q=findable")
    delete(client, alice, post)
    assert client.get("/api/posts").get_json()["items"] == []
    body = client.get("/api/posts?q=findable").get_json()
    assert body["items"] == [] and body["total"] == 0


def test_post_deleted_by_admin_leaves_every_listing(client, alice, bob, admin):
    client.post(f"/api/users/{alice.id}/follow", headers=bob.headers)
    post = create_post(client, alice)
    delete(client, admin, post)
    for url in (f"/api/users/{alice.id}/posts", f"/api/users/{bob.id}/feed", "/api/posts"):
        assert post["id"] not in [item["id"] for item in client.get(url).get_json()["items"]]


# --- likes ------------------------------------------------------------------------------------


def like(client, user, post):
    return client.post(f"/api/posts/{post['id']}/like", headers=user.headers)


def unlike(client, user, post):
    return client.delete(f"/api/posts/{post['id']}/like", headers=user.headers)


def likes_of(client, post):
    return client.get(f"/api/posts/{post['id']}").get_json()["likes_count"]


def test_like_returns_liked_and_count(client, alice, bob):
    post = create_post(client, alice)
    response = like(client, bob, post)
    assert response.status_code == 200
    assert response.get_json() == {"liked": True, "likes_count": 1}


def test_unlike_returns_not_liked_and_count(client, alice, bob):
    post = create_post(client, alice)
    like(client, bob, post)
    response = unlike(client, bob, post)
    assert response.status_code == 200
    assert response.get_json() == {"liked": False, "likes_count": 0}


def test_repeated_like_is_idempotent(client, alice, bob):
    post = create_post(client, alice)
    for _ in range(3):
        assert like(client, bob, post).get_json() == {"liked": True, "likes_count": 1}
    assert likes_of(client, post) == 1


def test_repeated_unlike_is_idempotent_and_never_negative(client, alice, bob):
    post = create_post(client, alice)
    like(client, bob, post)
    for _ in range(3):
        assert unlike(client, bob, post).get_json() == {"liked": False, "likes_count": 0}
    assert likes_of(client, post) == 0


def test_unlike_without_like_changes_nothing(client, alice, bob, carol):
    post = create_post(client, alice)
    like(client, carol, post)
    assert unlike(client, bob, post).get_json() == {"liked": False, "likes_count": 1}
    assert likes_of(client, post) == 1


def test_likes_count_is_exact_across_users_on_the_next_read(client, alice, bob, carol):
    post = create_post(client, alice)
    likes_of(client, post)
    like(client, alice, post)
    like(client, bob, post)
    like(client, carol, post)
    unlike(client, alice, post)
    like(client, bob, post)
    assert likes_of(client, post) == 2


def test_likes_count_shows_in_listings(client, alice, bob):
    post = create_post(client, alice)
    client.get(f"/api/users/{alice.id}/posts")
    like(client, bob, post)
    assert client.get(f"/api/users/{alice.id}/posts").get_json()["items"][0]["likes_count"] == 1


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_like_unknown_post_is_404(client, alice, method):
    response = client.open(f"/api/posts/{UNKNOWN_ID}/like", method=method, headers=alice.headers)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_like_deleted_post_is_404(client, alice, bob, method):
    post = create_post(client, alice)
    delete(client, alice, post)
    response = client.open(f"/api/posts/{post['id']}/like", method=method, headers=bob.headers)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("bad", BAD_IDS)
def test_like_malformed_id_is_400_invalid_id(client, alice, method, bad):
    response = client.open(f"/api/posts/{bad}/like", method=method, headers=alice.headers)
    assert_error(response, 400, "invalid_id")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_like_without_token_is_401_and_changes_nothing(client, alice, method):
    post = create_post(client, alice)
    assert_error(client.open(f"/api/posts/{post['id']}/like", method=method), 401, "unauthorized")
    assert likes_of(client, post) == 0
