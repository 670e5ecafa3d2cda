"""GET /api/users/<id>, /api/users/by-username/<username>, GET and PATCH /api/me."""
import pytest

from .helpers import (
    BAD_IDS,
    JUNK,
    NOT_OBJECTS,
    TIERS,
    UNKNOWN_ID,
    assert_error,
    assert_profile,
    assert_validation_error,
    big_body,
    create_post,
    raw_json,
)

# --- public profiles ------------------------------------------------------------------------


def test_profile_has_exactly_the_public_fields(client, alice):
    response = client.get(f"/api/users/{alice.id}")
    assert response.status_code == 200
    body = assert_profile(response.get_json())
    assert body["id"] == alice.id and body["username"] == "alice"


def test_profile_never_leaks_private_data(client, alice):
    text = client.get(f"/api/users/{alice.id}").get_data(as_text=True)
    assert alice.email not in text and "password" not in text and "role" not in text


def test_profile_of_an_admin_does_not_reveal_the_role(client, admin):
    body = client.get(f"/api/users/{admin.id}").get_json()
    assert "role" not in body and "admin" not in body.values()


def test_unknown_profile_is_404(client):
    assert_error(client.get(f"/api/users/{UNKNOWN_ID}"), 404, "not_found")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_malformed_profile_id_is_400_invalid_id(client, bad):
    assert_error(client.get(f"/api/users/{bad}"), 400, "invalid_id")


def test_profile_carries_x_cache_and_etag(client, alice):
    response = client.get(f"/api/users/{alice.id}")
    assert response.headers["X-Cache"] in TIERS
    assert response.headers.get("ETag")


def test_first_read_of_a_profile_comes_from_l3(client, alice):
    assert client.get(f"/api/users/{alice.id}").headers["X-Cache"] == "L3"


def test_profile_matching_if_none_match_is_304_without_body(client, alice):
    etag = client.get(f"/api/users/{alice.id}").headers["ETag"]
    response = client.get(f"/api/users/{alice.id}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.get_data() == b""


def test_profile_stale_if_none_match_gets_the_new_body(client, alice):
    etag = client.get(f"/api/users/{alice.id}").headers["ETag"]
    client.patch("/api/me", json={"bio": "changed"}, headers=alice.headers)
    response = client.get(f"/api/users/{alice.id}", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.get_json()["bio"] == "changed"
    assert response.headers["ETag"] != etag


# --- by username ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "ALICE", "Alice", "aLiCe"])
def test_by_username_is_case_insensitive(client, alice, name):
    response = client.get(f"/api/users/by-username/{name}")
    assert response.status_code == 200
    assert assert_profile(response.get_json())["id"] == alice.id


def test_by_username_finds_a_mixed_case_name(client, make_user):
    user = make_user("MixedCase")
    body = client.get("/api/users/by-username/mixedcase").get_json()
    assert body["id"] == user.id and body["username"] == "MixedCase"


def test_by_username_carries_x_cache_and_etag(client, alice):
    response = client.get("/api/users/by-username/alice")
    assert response.headers["X-Cache"] in TIERS and response.headers.get("ETag")


def test_by_username_matching_if_none_match_is_304(client, alice):
    etag = client.get("/api/users/by-username/alice").headers["ETag"]
    response = client.get("/api/users/by-username/alice", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.get_data() == b""


@pytest.mark.parametrize(
    "name", ["nobody", "al", "a" * 31, "a" * 5000, "$ne", "%24ne", "alice%00", "alice%20", "..", "%ED%A0%80"]
)
def test_by_username_unknown_or_impossible_is_404(client, alice, name):
    assert_error(client.get(f"/api/users/by-username/{name}"), 404, "not_found")


# --- /api/me --------------------------------------------------------------------------------


def test_me_is_the_private_profile(client, alice):
    response = client.get("/api/me", headers=alice.headers)
    assert response.status_code == 200
    body = assert_profile(response.get_json(), private=True)
    assert body["id"] == alice.id and body["email"] == alice.email and body["role"] == "user"


def test_me_of_an_admin_says_admin(client, admin):
    assert client.get("/api/me", headers=admin.headers).get_json()["role"] == "admin"


def test_me_without_token_is_401(client):
    assert_error(client.get("/api/me"), 401, "unauthorized")


# --- PATCH /api/me --------------------------------------------------------------------------


def patch(client, user, body):
    return client.patch("/api/me", json=body, headers=user.headers)


def profile(client, user):
    return client.get(f"/api/users/{user.id}").get_json()


def test_patch_me_returns_the_updated_private_profile(client, alice):
    changes = {"display_name": "Alice A.", "bio": "hello", "avatar_url": "https://img.example.com/a.png"}
    response = patch(client, alice, changes)
    assert response.status_code == 200
    body = assert_profile(response.get_json(), private=True)
    assert {k: body[k] for k in changes} == changes


def test_patch_me_is_visible_in_the_public_profile_at_once(client, alice):
    client.get(f"/api/users/{alice.id}")
    patch(client, alice, {"display_name": "New Name", "bio": "new bio"})
    body = profile(client, alice)
    assert (body["display_name"], body["bio"]) == ("New Name", "new bio")


def test_patch_me_is_visible_by_username_at_once(client, alice):
    client.get("/api/users/by-username/alice")
    patch(client, alice, {"display_name": "Renamed"})
    assert client.get("/api/users/by-username/alice").get_json()["display_name"] == "Renamed"


def test_patch_me_display_name_shows_in_post_author(client, alice):
    post = create_post(client, alice)
    client.get(f"/api/posts/{post['id']}")
    patch(client, alice, {"display_name": "Renamed"})
    assert client.get(f"/api/posts/{post['id']}").get_json()["author"]["display_name"] == "Renamed"


def test_patch_me_changes_only_the_given_fields(client, alice):
    patch(client, alice, {"bio": "first", "display_name": "Al"})
    patch(client, alice, {"bio": "second"})
    body = profile(client, alice)
    assert (body["bio"], body["display_name"]) == ("second", "Al")


def test_patch_me_avatar_can_be_cleared_with_null(client, alice):
    patch(client, alice, {"avatar_url": "http://example.com/a.png"})
    assert patch(client, alice, {"avatar_url": None}).get_json()["avatar_url"] is None
    assert profile(client, alice)["avatar_url"] is None


def test_patch_me_empty_object_changes_nothing(client, alice):
    before = profile(client, alice)
    response = patch(client, alice, {})
    assert response.status_code == 200
    assert profile(client, alice) == before


def test_patch_me_accepts_limits(client, alice):
    url = "https://example.com/" + "a" * (500 - len("https://example.com/"))
    body = patch(client, alice, {"display_name": "d" * 50, "bio": "b" * 160, "avatar_url": url}).get_json()
    assert (len(body["display_name"]), len(body["bio"]), body["avatar_url"]) == (50, 160, url)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"display_name": "d" * 51}, "display_name"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": None}, "display_name"),
        ({"bio": "b" * 161}, "bio"),
        ({"avatar_url": "ftp://example.com/a.png"}, "avatar_url"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"avatar_url": "not a url"}, "avatar_url"),
        ({"avatar_url": "https://example.com/" + "a" * 481}, "avatar_url"),
        ({"email": "new@example.com"}, "email"),
        ({"role": "admin"}, "role"),
        ({"username": "mallory"}, "username"),
        ({"followers_count": 1000}, "followers_count"),
        ({"password_hash": "x"}, "password_hash"),
        ({"$set": {"role": "admin"}}, "$set"),
        ({"bio": "ok", "unknown": 1}, "unknown"),
    ],
)
def test_patch_me_rejects_invalid_changes_and_changes_nothing(client, alice, changes, field):
    before = client.get("/api/me", headers=alice.headers).get_json()
    assert_validation_error(patch(client, alice, changes), field)
    assert client.get("/api/me", headers=alice.headers).get_json() == before


@pytest.mark.parametrize("field", ["display_name", "bio", "avatar_url"])
@pytest.mark.parametrize("value", [v for v in JUNK if v is not None], ids=repr)
def test_patch_me_rejects_junk_types_and_changes_nothing(client, alice, field, value):
    before = profile(client, alice)
    assert_validation_error(patch(client, alice, {field: value}), field)
    assert profile(client, alice) == before


@pytest.mark.parametrize("text", NOT_OBJECTS, ids=lambda t: repr(t)[:30])
def test_patch_me_rejects_non_object_bodies_and_changes_nothing(client, alice, text):
    before = profile(client, alice)
    assert_error(raw_json(client, "PATCH", "/api/me", text, headers=alice.headers), 400, "invalid_json")
    assert profile(client, alice) == before


def test_patch_me_rejects_lone_surrogates_without_500(client, alice):
    before = profile(client, alice)
    response = raw_json(client, "PATCH", "/api/me", '{"bio": "\\udfff"}', headers=alice.headers)
    assert response.status_code == 400
    assert profile(client, alice) == before


def test_patch_me_rejects_bodies_over_64_kib(client, alice):
    before = profile(client, alice)
    response = raw_json(client, "PATCH", "/api/me", big_body(), headers=alice.headers)
    assert_error(response, 413, "payload_too_large")
    assert profile(client, alice) == before


def test_patch_me_without_token_is_401_and_changes_nothing(client, alice):
    before = profile(client, alice)
    assert_error(client.patch("/api/me", json={"bio": "x"}), 401, "unauthorized")
    assert profile(client, alice) == before


def test_patch_me_trims_white_space(client, alice):
    body = patch(client, alice, {"display_name": "  Al  ", "bio": "  hi  "}).get_json()
    assert (body["display_name"], body["bio"]) == ("Al", "hi")
