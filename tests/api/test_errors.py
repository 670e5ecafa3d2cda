"""Cross-cutting promises: error shape, 401 on every protected route, 404/405/413, hostile bodies,
503 with Retry-After when the store fails."""
import pytest
from pymongo.errors import AutoReconnect, WriteConcernError

from .helpers import (
    UNKNOWN_ID,
    assert_error,
    bearer,
    expired,
    forged_token,
    raw_json,
)

# Every protected route of API.md, with a body it would accept.
PROTECTED = [
    ("POST", "/api/auth/logout", None),
    ("GET", "/api/me", None),
    ("PATCH", "/api/me", {"bio": "x"}),
    ("POST", f"/api/users/{UNKNOWN_ID}/follow", None),
    ("DELETE", f"/api/users/{UNKNOWN_ID}/follow", None),
    ("POST", "/api/posts", {"content": "x"}),
    ("DELETE", f"/api/posts/{UNKNOWN_ID}", None),
    ("POST", f"/api/posts/{UNKNOWN_ID}/like", None),
    ("DELETE", f"/api/posts/{UNKNOWN_ID}/like", None),
    ("GET", "/api/feed", None),
    ("POST", "/api/cache/invalidate", {"prefix": "profile:"}),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in PROTECTED]

BAD_AUTH_HEADERS = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer    ",
    "Basic dXNlcjpwYXNz",
    "Token abc",
    "Bearer garbage",
    "Bearer a.b.c",
    "Bearer " + "x" * 5000,
    "bearer",
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
]


@pytest.fixture
def headers_for(request):
    """Headers that get a request on `path` past authentication (an admin's only where needed)."""

    def headers(path):
        if path.startswith("/api/cache/"):
            return request.getfixturevalue("admin").headers
        if path.startswith("/api/auth/"):
            return {}
        return request.getfixturevalue("alice").headers

    return headers


def call(client, method, path, body, headers=None):
    return client.open(path, method=method, json=body, headers=headers or {})


@pytest.mark.parametrize("method, path, body", PROTECTED, ids=ROUTE_IDS)
@pytest.mark.parametrize("header", BAD_AUTH_HEADERS, ids=lambda h: repr(h)[:25])
def test_protected_routes_reject_missing_or_malformed_tokens(client, method, path, body, header):
    headers = {} if header is None else {"Authorization": header}
    assert_error(call(client, method, path, body, headers), 401, "unauthorized")


@pytest.mark.parametrize("method, path, body", PROTECTED, ids=ROUTE_IDS)
def test_protected_routes_reject_expired_tokens(client, worker, alice, method, path, body):
    token = expired(worker.config.jwt_secret, alice.access_token)
    assert_error(call(client, method, path, body, bearer(token)), 401, "unauthorized")


@pytest.mark.parametrize("method, path, body", PROTECTED, ids=ROUTE_IDS)
def test_protected_routes_reject_revoked_tokens(client, alice, method, path, body):
    assert client.post("/api/auth/logout", headers=alice.headers).status_code == 200
    assert_error(call(client, method, path, body, alice.headers), 401, "unauthorized")


@pytest.mark.parametrize("method, path, body", PROTECTED, ids=ROUTE_IDS)
def test_protected_routes_reject_refresh_tokens(client, alice, method, path, body):
    assert_error(call(client, method, path, body, bearer(alice.refresh_token)), 401, "unauthorized")


@pytest.mark.parametrize("method, path, body", PROTECTED, ids=ROUTE_IDS)
def test_protected_routes_reject_tokens_signed_with_another_key(client, alice, method, path, body):
    token = forged_token("not-the-secret-" + "z" * 40, alice.access_token)
    assert_error(call(client, method, path, body, bearer(token)), 401, "unauthorized")


@pytest.mark.parametrize(
    "claims",
    [{"sub": "not-an-object-id"}, {"sub": 12}, {"sid": None}, {"typ": "refresh"}, {"exp": "soon"}],
    ids=repr,
)
def test_validly_signed_tokens_with_bad_claims_are_401(client, worker, alice, claims):
    token = forged_token(worker.config.jwt_secret, alice.access_token, **claims)
    assert_error(client.get("/api/me", headers=bearer(token)), 401, "unauthorized")


def test_a_token_of_an_unknown_session_is_401(client, worker, alice):
    token = forged_token(worker.config.jwt_secret, alice.access_token, sid="no-such-session")
    assert_error(client.get("/api/me", headers=bearer(token)), 401, "unauthorized")


def test_lowercase_bearer_scheme_is_accepted(client, alice):
    assert client.get("/api/me", headers={"Authorization": f"bearer {alice.access_token}"}).status_code == 200


# --- unknown routes and wrong methods ---------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/api", "/api/", "/api/users", "/api/users/", "/api/posts/a/b/c", "/api/%00", "/api/me/x"]
)
def test_unknown_routes_are_json_404(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/auth/register"),
        ("PUT", "/api/auth/login"),
        ("DELETE", "/api/me"),
        ("PUT", "/api/me"),
        ("POST", f"/api/users/{UNKNOWN_ID}"),
        ("PATCH", f"/api/posts/{UNKNOWN_ID}"),
        ("PUT", "/api/posts"),
        ("GET", f"/api/users/{UNKNOWN_ID}/follow"),
        ("GET", f"/api/posts/{UNKNOWN_ID}/like"),
        ("POST", "/api/feed"),
        ("GET", "/api/cache/invalidate"),
        ("POST", "/api/cache/stats"),
        ("POST", "/healthz"),
        ("DELETE", "/metrics"),
    ],
)
def test_wrong_methods_are_json_405_with_allow(client, method, path):
    response = client.open(path, method=method)
    assert_error(response, 405, "method_not_allowed")
    assert method not in response.headers["Allow"]


# --- bodies -----------------------------------------------------------------------------------

BODY_ROUTES = [
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/refresh"),
    ("PATCH", "/api/me"),
    ("POST", "/api/posts"),
    ("POST", "/api/cache/invalidate"),
]


@pytest.mark.parametrize("method, path", BODY_ROUTES)
def test_form_encoded_bodies_are_400_invalid_json(client, headers_for, method, path):
    response = client.open(path, method=method, data={"content": "x"}, headers=headers_for(path))
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("method, path", BODY_ROUTES)
def test_unknown_fields_are_400_validation_error_everywhere(client, headers_for, method, path):
    response = client.open(path, method=method, json={"$where": "sleep(1000)"}, headers=headers_for(path))
    error = assert_error(response, 400, "validation_error")
    assert "$where" in error["details"]


@pytest.mark.parametrize("method, path", BODY_ROUTES)
def test_lone_surrogate_field_names_are_4xx(client, headers_for, method, path):
    response = raw_json(client, method, path, '{"\\ud800": "x"}', headers=headers_for(path))
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


ALL_BODY_ROUTES = BODY_ROUTES + [
    ("POST", "/api/auth/logout"),
    ("POST", f"/api/users/{UNKNOWN_ID}/follow"),
    ("POST", f"/api/posts/{UNKNOWN_ID}/like"),
]


@pytest.mark.parametrize("method, path", ALL_BODY_ROUTES)
def test_bodies_over_64_kib_are_413_everywhere(client, headers_for, method, path):
    response = raw_json(client, method, path, "{" + " " * (64 * 1024) + "}", headers=headers_for(path))
    assert_error(response, 413, "payload_too_large")


def test_a_body_just_under_64_kib_is_read(client, alice):
    body = '{"content": "x"' + " " * (64 * 1024 - 40) + "}"
    assert len(body) <= 64 * 1024
    response = client.post("/api/posts", data=body, content_type="application/json", headers=alice.headers)
    assert response.status_code == 201


def test_the_content_type_header_is_not_required(client, alice):
    response = client.post("/api/posts", data='{"content": "typed"}', headers=alice.headers)
    assert response.status_code == 201


def test_validation_details_of_list_items_map_the_field_to_messages(client, admin):
    response = client.post("/api/cache/invalidate", json={"keys": [1, "profile:x", {"a": 1}]}, headers=admin.headers)
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"keys"}


def test_error_bodies_are_json_with_only_the_error_member(client):
    response = client.get("/api/users/not-an-id")
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(response.get_json()) == {"error"}


# --- the store failing ------------------------------------------------------------------------
# pymongo raises a ConnectionFailure (AutoReconnect, ServerSelectionTimeoutError, ...) when
# MongoDB cannot be reached or a connection drops, and the embedded store reports its SQLite
# failures the same way (docstore/database.py, translate_errors). A write concern not met in
# time is a WriteConcernError. feedapp/errors.py answers both with 503 and Retry-After.


class CursorCut:
    """A query whose results never arrive: iterating it raises what pymongo raises when the
    connection drops before the first batch (find() itself sends nothing yet)."""

    def sort(self, *args, **kwargs):
        return self

    skip = limit = batch_size = sort

    def __iter__(self):
        raise AutoReconnect("test: connection closed while the cursor was read")


class StoreWith:
    """The app's database, but with some methods of some collections replaced."""

    def __init__(self, db, **replaced):
        self._db, self._replaced = db, replaced  # collection name -> {method: function}

    def __getitem__(self, name):
        collection = self._db[name]
        return Collection(collection, self._replaced[name]) if name in self._replaced else collection

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name] if name in self._replaced else getattr(self._db, name)


class Collection:
    def __init__(self, collection, methods):
        self._collection, self._methods = collection, methods

    def __getattr__(self, name):
        return self._methods.get(name) or getattr(self._collection, name)


def assert_unavailable(response):
    """503 service_unavailable in the error shape, telling the client when to try again."""
    assert_error(response, 503, "service_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_an_uncached_read_the_store_cannot_answer_is_a_503_with_retry_after(client, worker, monkeypatch):
    store = worker.repo.db
    monkeypatch.setattr(worker.repo, "db", StoreWith(store, posts={"find": lambda *a, **k: CursorCut()}))
    assert_unavailable(client.get("/api/posts?q=anything"))
    monkeypatch.setattr(worker.repo, "db", store)  # the store answers again
    response = client.get("/api/posts?q=anything")  # and the failure was not cached
    assert response.status_code == 200 and response.headers["X-Cache"] == "L3"


def test_a_write_the_store_could_not_confirm_is_a_503_with_retry_after(client, worker, alice, monkeypatch):
    store = worker.repo.db

    def applied_but_unconfirmed(*args, **kwargs):  # the primary has it; w=majority timed out
        store.users.find_one_and_update(*args, **kwargs)
        raise WriteConcernError("waiting for replication timed out", 64, {"wtimeout": True})

    monkeypatch.setattr(worker.repo, "db", StoreWith(store, users={"find_one_and_update": applied_but_unconfirmed}))
    assert_unavailable(client.patch("/api/me", json={"bio": "unconfirmed"}, headers=alice.headers))
