"""POST /api/auth/register, login, refresh, logout."""
import pytest

from .helpers import (
    JUNK,
    NOT_OBJECTS,
    PRIVATE_PROFILE_FIELDS,
    TOKEN_FIELDS,
    assert_error,
    assert_profile,
    assert_validation_error,
    bearer,
    big_body,
    expired,
    forged_token,
    raw_json,
)

REGISTER = "/api/auth/register"
GOOD = {"username": "dave", "email": "dave@example.com", "password": "password123"}


def register(client, **changes):
    return client.post(REGISTER, json={**GOOD, **changes})


def login(client, username, password="password123"):
    return client.post("/api/auth/login", json={"username": username, "password": password})


# --- register -------------------------------------------------------------------------------


def test_register_returns_201_with_private_profile_only(client):
    response = register(client)
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"user"}
    user = assert_profile(body["user"], private=True)
    assert set(user) == PRIVATE_PROFILE_FIELDS
    assert user["username"] == "dave" and user["email"] == "dave@example.com"
    assert user["role"] == "user"
    assert (user["followers_count"], user["following_count"], user["posts_count"]) == (0, 0, 0)


def test_register_display_name_defaults_to_username(client):
    assert register(client).get_json()["user"]["display_name"] == "dave"


def test_register_keeps_given_display_name(client):
    user = register(client, display_name="Dave D.").get_json()["user"]
    assert user["display_name"] == "Dave D."


def test_register_never_returns_password_or_hash(client):
    text = register(client).get_data(as_text=True)
    assert "password123" not in text and "password" not in text and "pbkdf2" not in text


@pytest.mark.parametrize("username", ["abc", "a" * 30, "A_b_9", "___"])
def test_register_accepts_usernames_at_the_limits(client, username):
    assert register(client, username=username).status_code == 201


@pytest.mark.parametrize("password", ["x" * 8, "x" * 128])
def test_register_accepts_passwords_at_the_limits(client, password):
    assert register(client, password=password).status_code == 201


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"username": "ab"}, "username"),
        ({"username": "a" * 31}, "username"),
        ({"username": "al ice"}, "username"),
        ({"username": "al-ice"}, "username"),
        ({"username": "ålice"}, "username"),
        ({"username": "a@b.com"}, "username"),
        ({"username": "$ne"}, "username"),
        ({"username": ""}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"password": "x" * 7}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"display_name": "d" * 51}, "display_name"),
        ({"display_name": None}, "display_name"),
        ({"role": "admin"}, "role"),
        ({"is_admin": True}, "is_admin"),
        ({"$where": "1"}, "$where"),
    ],
)
def test_register_rejects_invalid_fields_and_creates_nothing(client, users_count, changes, field):
    assert_validation_error(register(client, **changes), field)
    assert users_count() == 0


@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_register_requires_each_field(client, users_count, field):
    body = {k: v for k, v in GOOD.items() if k != field}
    assert_validation_error(client.post(REGISTER, json=body), field)
    assert users_count() == 0


@pytest.mark.parametrize("field", ["username", "email", "password", "display_name"])
@pytest.mark.parametrize("value", JUNK, ids=repr)
def test_register_rejects_junk_types(client, users_count, field, value):
    assert_validation_error(register(client, **{field: value}), field)
    assert users_count() == 0


@pytest.mark.parametrize("text", NOT_OBJECTS, ids=lambda t: repr(t)[:30])
def test_register_rejects_non_object_bodies(client, users_count, text):
    assert_error(raw_json(client, "POST", REGISTER, text), 400, "invalid_json")
    assert users_count() == 0


def test_register_rejects_lone_surrogates_without_500(client, users_count):
    text = '{"username": "dave", "email": "dave@example.com", "password": "pass\\ud800word"}'
    assert raw_json(client, "POST", REGISTER, text).status_code == 400
    assert users_count() == 0


def test_register_rejects_bodies_over_64_kib(client, users_count):
    assert_error(raw_json(client, "POST", REGISTER, big_body()), 413, "payload_too_large")
    assert users_count() == 0


def test_register_taken_username_is_409_case_insensitively(client, users_count):
    assert register(client, username="alice", email="a1@example.com").status_code == 201
    error = assert_error(register(client, username="Alice", email="a2@example.com"), 409, "conflict")
    assert "username" in error["details"]
    assert users_count() == 1


def test_register_taken_email_is_409(client, users_count):
    assert register(client, username="alice", email="same@example.com").status_code == 201
    assert_error(register(client, username="other", email="same@example.com"), 409, "conflict")
    assert users_count() == 1


def test_register_taken_email_is_409_case_insensitively(client, users_count):
    assert register(client, username="alice", email="same@example.com").status_code == 201
    assert_error(register(client, username="other", email="SAME@Example.COM"), 409, "conflict")
    assert users_count() == 1


def test_register_taken_email_conflict_names_the_email_field(client):
    assert register(client, username="alice", email="same@example.com").status_code == 201
    error = assert_error(register(client, username="other", email="same@example.com"), 409, "conflict")
    assert "email" in error["details"] and "username" not in error["details"]


# --- login ----------------------------------------------------------------------------------


def test_login_returns_bearer_token_pair(client, alice):
    response = login(client, "alice")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == TOKEN_FIELDS
    assert body["token_type"] == "bearer"
    assert type(body["expires_in"]) is int and body["expires_in"] > 0
    assert client.get("/api/me", headers=bearer(body["access_token"])).get_json()["id"] == alice.id


def test_login_by_email(client, alice):
    body = login(client, alice.email).get_json()
    assert client.get("/api/me", headers=bearer(body["access_token"])).get_json()["id"] == alice.id


def test_login_by_email_ignores_case(client, alice):
    assert login(client, alice.email.upper()).status_code == 200


def test_login_wrong_password_and_unknown_user_are_the_same_401(client, alice):
    wrong = assert_error(login(client, "alice", "wrong-password"), 401, "unauthorized")
    unknown = assert_error(login(client, "nobody", "wrong-password"), 401, "unauthorized")
    assert wrong == unknown


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("value", JUNK, ids=repr)
def test_login_rejects_junk_types_without_logging_in(client, alice, field, value):
    body = {"username": "alice", "password": alice.password, field: value}
    assert_validation_error(client.post("/api/auth/login", json=body), field)


def test_login_rejects_operator_password(client, alice):
    body = {"username": "alice", "password": {"$ne": None}}
    assert client.post("/api/auth/login", json=body).status_code == 400


def test_login_rejects_unknown_fields(client, alice):
    body = {"username": "alice", "password": alice.password, "remember": True}
    assert_validation_error(client.post("/api/auth/login", json=body), "remember")


@pytest.mark.parametrize("text", NOT_OBJECTS, ids=lambda t: repr(t)[:30])
def test_login_rejects_non_object_bodies(client, text):
    assert_error(raw_json(client, "POST", "/api/auth/login", text), 400, "invalid_json")


def test_login_rejects_lone_surrogates_without_500(client, alice):
    text = '{"username": "alice", "password": "pass\\ud800word"}'
    assert raw_json(client, "POST", "/api/auth/login", text).status_code == 400


def test_login_rejects_bodies_over_64_kib(client):
    assert_error(raw_json(client, "POST", "/api/auth/login", big_body()), 413, "payload_too_large")


def test_the_21st_login_ends_the_oldest_session(client, alice):
    login = {"username": "alice", "password": alice.password}
    newer = [client.post("/api/auth/login", json=login).get_json() for _ in range(20)]  # alice's first is oldest
    assert_error(client.get("/api/me", headers=alice.headers), 401, "unauthorized")
    assert_error(client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token}), 401, "unauthorized")
    for pair in (newer[0], newer[-1]):
        assert client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 200


# --- refresh --------------------------------------------------------------------------------


def refresh(client, token):
    return client.post("/api/auth/refresh", json={"refresh_token": token})


def test_refresh_returns_a_new_working_pair(client, alice):
    response = refresh(client, alice.refresh_token)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == TOKEN_FIELDS and body["token_type"] == "bearer"
    assert body["refresh_token"] != alice.refresh_token
    assert client.get("/api/me", headers=bearer(body["access_token"])).status_code == 200


def test_refresh_rotates_so_the_old_refresh_token_is_rejected(client, alice):
    assert refresh(client, alice.refresh_token).status_code == 200
    assert_error(refresh(client, alice.refresh_token), 401, "unauthorized")


def test_reusing_an_old_refresh_token_ends_the_session(client, alice):
    newer = refresh(client, alice.refresh_token).get_json()
    assert_error(refresh(client, alice.refresh_token), 401)
    assert_error(refresh(client, newer["refresh_token"]), 401)
    assert_error(client.get("/api/me", headers=bearer(newer["access_token"])), 401)


def test_refresh_rejects_an_access_token(client, alice):
    assert_error(refresh(client, alice.access_token), 401, "unauthorized")


def test_refresh_rejects_an_expired_refresh_token(client, alice, worker):
    token = expired(worker.config.jwt_secret, alice.refresh_token)
    assert_error(refresh(client, token), 401, "unauthorized")


def test_refresh_rejects_a_token_signed_with_another_secret(client, alice):
    token = forged_token("another-secret-" + "y" * 40, alice.refresh_token)
    assert_error(refresh(client, token), 401, "unauthorized")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 4096, "Bearer x"])
def test_refresh_rejects_garbage_tokens(client, token):
    assert_error(refresh(client, token), 401, "unauthorized")


@pytest.mark.parametrize("value", JUNK, ids=repr)
def test_refresh_rejects_junk_types(client, value):
    assert_validation_error(client.post("/api/auth/refresh", json={"refresh_token": value}), "refresh_token")


def test_refresh_requires_the_token_field(client):
    assert_validation_error(client.post("/api/auth/refresh", json={}), "refresh_token")


@pytest.mark.parametrize("text", NOT_OBJECTS, ids=lambda t: repr(t)[:30])
def test_refresh_rejects_non_object_bodies(client, text):
    assert_error(raw_json(client, "POST", "/api/auth/refresh", text), 400, "invalid_json")


def test_refresh_rejects_lone_surrogates_without_500(client):
    text = '{"refresh_token": "a\\ud800b"}'
    assert raw_json(client, "POST", "/api/auth/refresh", text).status_code in (400, 401)


# --- logout ---------------------------------------------------------------------------------


def test_logout_returns_a_message(client, alice):
    response = client.post("/api/auth/logout", headers=alice.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"message"} and isinstance(body["message"], str)


def test_logout_revokes_the_access_token(client, alice):
    client.post("/api/auth/logout", headers=alice.headers)
    assert_error(client.get("/api/me", headers=alice.headers), 401, "unauthorized")
    assert_error(client.post("/api/auth/logout", headers=alice.headers), 401, "unauthorized")


def test_logout_revokes_the_refresh_token(client, alice):
    client.post("/api/auth/logout", headers=alice.headers)
    assert_error(refresh(client, alice.refresh_token), 401, "unauthorized")


def test_logout_leaves_other_users_logged_in(client, alice, bob):
    client.post("/api/auth/logout", headers=alice.headers)
    assert client.get("/api/me", headers=bob.headers).status_code == 200


def test_logout_after_refresh_revokes_the_rotated_pair(client, alice):
    newer = refresh(client, alice.refresh_token).get_json()
    assert client.post("/api/auth/logout", headers=bearer(newer["access_token"])).status_code == 200
    assert_error(client.get("/api/me", headers=bearer(newer["access_token"])), 401)
    assert_error(refresh(client, newer["refresh_token"]), 401)


def test_logout_without_token_is_401(client):
    assert_error(client.post("/api/auth/logout"), 401, "unauthorized")


def test_logout_rejects_bodies_over_64_kib(client, alice):
    response = raw_json(client, "POST", "/api/auth/logout", big_body(), headers=alice.headers)
    assert_error(response, 413, "payload_too_large")
