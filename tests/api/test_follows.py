"""POST/DELETE /api/users/<id>/follow, GET /api/users/<id>/following and /followers."""
import pytest

from .helpers import (
    BAD_CURSORS,
    BAD_IDS,
    BAD_LIMITS,
    UNKNOWN_ID,
    assert_error,
    assert_page,
    assert_profile,
    assert_validation_error,
    walk_pages,
)


def follow(client, who, whom):
    return client.post(f"/api/users/{whom.id}/follow", headers=who.headers)


def unfollow(client, who, whom):
    return client.delete(f"/api/users/{whom.id}/follow", headers=who.headers)


def counts(client, user):
    body = client.get(f"/api/users/{user.id}").get_json()
    return body["followers_count"], body["following_count"]


def test_follow_returns_following_true(client, alice, bob):
    response = follow(client, alice, bob)
    assert response.status_code == 200
    assert response.get_json() == {"following": True}


def test_unfollow_returns_following_false(client, alice, bob):
    follow(client, alice, bob)
    response = unfollow(client, alice, bob)
    assert response.status_code == 200
    assert response.get_json() == {"following": False}


def test_follow_updates_both_counters_exactly(client, alice, bob):
    follow(client, alice, bob)
    assert counts(client, bob) == (1, 0)
    assert counts(client, alice) == (0, 1)


def test_repeated_follow_is_idempotent(client, alice, bob):
    for _ in range(3):
        assert follow(client, alice, bob).get_json() == {"following": True}
    assert counts(client, bob) == (1, 0) and counts(client, alice) == (0, 1)


def test_unfollow_updates_both_counters_exactly(client, alice, bob):
    follow(client, alice, bob)
    unfollow(client, alice, bob)
    assert counts(client, bob) == (0, 0) and counts(client, alice) == (0, 0)


def test_repeated_unfollow_is_idempotent_and_never_negative(client, alice, bob):
    follow(client, alice, bob)
    for _ in range(3):
        assert unfollow(client, alice, bob).get_json() == {"following": False}
    assert counts(client, bob) == (0, 0) and counts(client, alice) == (0, 0)


def test_unfollow_without_following_is_harmless(client, alice, bob):
    assert unfollow(client, alice, bob).get_json() == {"following": False}
    assert counts(client, bob) == (0, 0)


def test_counters_count_several_followers(client, alice, bob, carol):
    follow(client, bob, alice)
    follow(client, carol, alice)
    follow(client, alice, bob)
    unfollow(client, carol, alice)
    follow(client, bob, alice)
    assert counts(client, alice) == (1, 1)
    assert counts(client, bob) == (1, 1)
    assert counts(client, carol) == (0, 0)


def test_follow_counters_show_in_private_profile(client, alice, bob):
    follow(client, alice, bob)
    assert client.get("/api/me", headers=alice.headers).get_json()["following_count"] == 1


def test_self_follow_is_400_and_changes_nothing(client, alice):
    error = assert_error(follow(client, alice, alice), 400)
    assert error["code"] == "validation_error"
    assert counts(client, alice) == (0, 0)


def test_self_unfollow_is_400(client, alice):
    assert_error(unfollow(client, alice, alice), 400)


def test_follow_unknown_user_is_404(client, alice):
    assert_error(client.post(f"/api/users/{UNKNOWN_ID}/follow", headers=alice.headers), 404, "not_found")
    assert counts(client, alice) == (0, 0)


def test_unfollow_unknown_user_is_404(client, alice):
    assert_error(client.delete(f"/api/users/{UNKNOWN_ID}/follow", headers=alice.headers), 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("bad", BAD_IDS)
def test_follow_malformed_id_is_400_invalid_id(client, alice, method, bad):
    response = client.open(f"/api/users/{bad}/follow", method=method, headers=alice.headers)
    assert_error(response, 400, "invalid_id")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_follow_without_token_is_401_and_changes_nothing(client, bob, method):
    assert_error(client.open(f"/api/users/{bob.id}/follow", method=method), 401, "unauthorized")
    assert counts(client, bob) == (0, 0)


# --- follow lists ---------------------------------------------------------------------------


def test_following_lists_public_profiles(client, alice, bob, carol):
    follow(client, alice, bob)
    follow(client, alice, carol)
    response = client.get(f"/api/users/{alice.id}/following")
    assert response.status_code == 200
    body = assert_page(response.get_json())
    for item in body["items"]:
        assert_profile(item)
    assert {item["id"] for item in body["items"]} == {bob.id, carol.id}
    assert body["next_cursor"] is None


def test_followers_lists_public_profiles(client, alice, bob, carol):
    follow(client, bob, alice)
    follow(client, carol, alice)
    body = assert_page(client.get(f"/api/users/{alice.id}/followers").get_json())
    for item in body["items"]:
        assert_profile(item)
    assert {item["id"] for item in body["items"]} == {bob.id, carol.id}


def test_follow_lists_are_newest_follow_first(client, alice, bob, carol):
    follow(client, alice, bob)
    follow(client, alice, carol)
    items = client.get(f"/api/users/{alice.id}/following").get_json()["items"]
    assert [item["id"] for item in items] == [carol.id, bob.id]


def test_follow_list_items_never_leak_private_fields(client, alice, bob):
    follow(client, alice, bob)
    text = client.get(f"/api/users/{alice.id}/following").get_data(as_text=True)
    assert bob.email not in text and "role" not in text and "password" not in text


def test_follow_lists_reflect_unfollow(client, alice, bob):
    follow(client, alice, bob)
    unfollow(client, alice, bob)
    assert client.get(f"/api/users/{alice.id}/following").get_json()["items"] == []
    assert client.get(f"/api/users/{bob.id}/followers").get_json()["items"] == []


@pytest.mark.parametrize("direction", ["following", "followers"])
def test_follow_lists_paginate_over_every_user_once(client, make_user, alice, direction):
    others = [make_user() for _ in range(7)]
    for other in others:
        if direction == "following":
            follow(client, alice, other)
        else:
            follow(client, other, alice)
    ids = walk_pages(client, f"/api/users/{alice.id}/{direction}", limit=3)
    assert sorted(ids) == sorted(o.id for o in others)
    assert len(ids) == len(set(ids))


def test_follow_list_page_size_obeys_limit(client, make_user, alice):
    for _ in range(4):
        follow(client, make_user(), alice)
    body = client.get(f"/api/users/{alice.id}/followers?limit=2").get_json()
    assert len(body["items"]) == 2 and body["next_cursor"]


def test_follow_list_exact_fit_has_no_next_cursor(client, make_user, alice):
    for _ in range(2):
        follow(client, make_user(), alice)
    assert client.get(f"/api/users/{alice.id}/followers?limit=2").get_json()["next_cursor"] is None


@pytest.mark.parametrize("direction", ["following", "followers"])
def test_follow_list_of_unknown_user_is_404(client, direction):
    assert_error(client.get(f"/api/users/{UNKNOWN_ID}/{direction}"), 404, "not_found")


@pytest.mark.parametrize("direction", ["following", "followers"])
@pytest.mark.parametrize("bad", BAD_IDS)
def test_follow_list_malformed_id_is_400_invalid_id(client, direction, bad):
    assert_error(client.get(f"/api/users/{bad}/{direction}"), 400, "invalid_id")


@pytest.mark.parametrize("direction", ["following", "followers"])
@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_follow_list_bad_limit_is_400(client, alice, direction, limit):
    assert_validation_error(client.get(f"/api/users/{alice.id}/{direction}?limit={limit}"), "limit")


@pytest.mark.parametrize("direction", ["following", "followers"])
@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_follow_list_garbage_cursor_is_400(client, alice, direction, cursor):
    assert_validation_error(client.get(f"/api/users/{alice.id}/{direction}?before={cursor}"), "before")


def test_follow_list_rejects_a_post_cursor(client, alice):
    for _ in range(3):
        client.post("/api/posts", json={"content": "x"}, headers=alice.headers)
    cursor = client.get(f"/api/users/{alice.id}/posts?limit=1").get_json()["next_cursor"]
    assert_validation_error(client.get(f"/api/users/{alice.id}/followers?before={cursor}"), "before")


def test_follow_list_limit_bounds_are_accepted(client, alice):
    for limit in (1, 100):
        assert client.get(f"/api/users/{alice.id}/followers?limit={limit}").status_code == 200
