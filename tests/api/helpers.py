"""Assertions and small tools shared by the API tests."""
import json
import re
import time

import jwt

PROFILE_FIELDS = {
    "id", "username", "display_name", "bio", "avatar_url",
    "followers_count", "following_count", "posts_count", "created_at",
}
PRIVATE_PROFILE_FIELDS = PROFILE_FIELDS | {"email", "role"}
POST_FIELDS = {"id", "author", "content", "created_at", "likes_count"}
AUTHOR_FIELDS = {"id", "username", "display_name"}
TOKEN_FIELDS = {"access_token", "refresh_token", "token_type", "expires_in"}
TIERS = {"L1", "L2", "L3"}
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
ID_RE = re.compile(r"^[0-9a-f]{24}$")
UNKNOWN_ID = "0123456789abcdef01234567"

# Values a hostile client sends where a string is expected.
JUNK = [
    None, 0, 1.5, True, -1, 10**30, 1e308, [], ["a"], {}, {"a": "b"},
    {"$ne": None}, {"$gt": ""}, {"$regex": ".*"}, [{"$ne": None}],
]
# Path segments that are not ids.
BAD_IDS = [
    "123", "z" * 24, "0123456789abcdef0123456", "0123456789abcdef012345678", "$ne", "null",
    "-1", "0" * 1000, "0123456789abcdef0123456g", "%24ne", "%00" * 24, "é" * 24,
]
# Bodies that are not JSON objects.
NOT_OBJECTS = [
    "", "   ", "null", "[]", '[{"a": 1}]', "42", '"text"', "true", "{", '{"a": }', "{'a': 1}",
    "NaN", "[" * 20_000, '{"a":' * 12_000, b"\xff\xfe{}", b'{"content": "\xc3\x28"}',
]
# Query values that no paginated listing accepts for ?limit=.
BAD_LIMITS = ["0", "101", "-1", "1e9", "abc", "", "1.5", "10" * 40, "9" * 5000, "0x10", "[]"]
BAD_CURSORS = ["garbage", "!!!!", "a" * 201, "=", "cDEyMw", "%00", "eyJhIjoxfQ"]


def assert_error(response, status, code=None):
    """The response is `status` with API.md's error shape (and `code` when given); returns the error."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if "details" in error:
        assert isinstance(error["details"], dict)
    if error["code"] == "validation_error":
        details = error.get("details")
        assert isinstance(details, dict) and details, error
        for field, messages in details.items():
            assert isinstance(field, str) and isinstance(messages, list) and messages, details
            assert all(isinstance(m, str) and m for m in messages), details
    if status == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response.headers
    return error


def assert_validation_error(response, *fields):
    """400 validation_error whose details name every one of `fields`."""
    error = assert_error(response, 400, "validation_error")
    for field in fields:
        assert field in error["details"], error
    return error


def assert_profile(body, private=False):
    expected = PRIVATE_PROFILE_FIELDS if private else PROFILE_FIELDS
    assert set(body) == expected, sorted(body)
    assert ID_RE.match(body["id"])
    assert TIME_RE.match(body["created_at"])
    for name in ("followers_count", "following_count", "posts_count"):
        assert type(body[name]) is int and body[name] >= 0
    if private:
        assert body["role"] in ("user", "admin")
    return body


def assert_post(body):
    assert set(body) == POST_FIELDS, sorted(body)
    assert set(body["author"]) == AUTHOR_FIELDS, sorted(body["author"])
    assert ID_RE.match(body["id"]) and ID_RE.match(body["author"]["id"])
    assert TIME_RE.match(body["created_at"])
    assert type(body["likes_count"]) is int and body["likes_count"] >= 0
    return body


def assert_page(body):
    assert set(body) == {"items", "next_cursor"}, sorted(body)
    assert body["next_cursor"] is None or (isinstance(body["next_cursor"], str) and body["next_cursor"])
    return body


def raw_json(client, method, url, text, headers=None):
    """Send `text` (str or bytes) as an application/json body, unparsed."""
    return client.open(url, method=method, data=text, headers=headers, content_type="application/json")


def walk_pages(client, url, limit, headers=None, between_pages=None, max_pages=1000):
    """Follow next_cursor from the first page to the end; return every item's id in order."""
    ids, cursor = [], None
    for _ in range(max_pages):
        sep = "&" if "?" in url else "?"
        page_url = f"{url}{sep}limit={limit}" + (f"&before={cursor}" if cursor else "")
        response = client.get(page_url, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = assert_page(response.get_json())
        assert len(body["items"]) <= limit
        ids.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
        if between_pages:
            between_pages()
    raise AssertionError("pagination did not end")


def create_post(client, user, content="hello"):
    response = client.post("/api/posts", json={"content": content}, headers=user.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def forged_token(secret, token, **changes):
    """A copy of `token` with changed claims, signed with `secret`."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, secret, algorithm="HS256")


def expired(secret, token):
    now = int(time.time())
    return forged_token(secret, token, iat=now - 3600, exp=now - 60)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def big_body(size=64 * 1024 + 1):
    text = json.dumps({"content": "x" * size})
    assert len(text) > 64 * 1024
    return text


def counted_by(worker, action) -> dict:
    """The changes action() made to this worker's counters ({name: change})."""
    before = worker.stats.counted()
    action()
    after = worker.stats.counted()
    return {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}


def without_latency(counts: dict) -> dict:
    """counts without the latency buckets (a replay and a Flask answer take different times)."""
    return {k: v for k, v in counts.items() if not k.startswith("latency.")}
