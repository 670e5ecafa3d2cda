"""Property-based fuzzing of every operation of GET /api/openapi.json (schemathesis).

Each documented operation gets generated requests, valid and invalid (schemathesis' positive
and negative modes), sent to the WSGI app in process (mongomock + a real redis-server, as in
tests/conftest.py), with a live bearer token where the operation needs one. Every answer must
be below 500; every 4xx must be API.md's error shape; documented answers must match their
documented schema and content type. Derandomized and bounded, so a run is repeatable and short.
"""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.datastructures import Headers

from feedapp.http.openapi import build_spec

from .api.helpers import assert_error

EXAMPLES = 40

schema = schemathesis.openapi.from_dict(build_spec())


@pytest.fixture
def world(app, make_user):
    """A user with a post and a follow, and an admin: what authenticated requests act as."""
    alice, bob = make_user("alice"), make_user("bob", admin=True)
    client = app.test_client()
    assert client.post("/api/posts", json={"content": "hello"}, headers=alice.headers).status_code == 201
    assert client.post(f"/api/users/{bob.id}/follow", headers=alice.headers).status_code == 200
    return {"app": app, "user": alice, "admin": bob}


def _headers(case, world) -> dict:
    # schemathesis' WSGI transport asks for gzip and does not decode it: ask for plain bodies
    # (tests/api/test_compression.py checks the compressed ones).
    return {"Accept-Encoding": "identity", **_auth_headers(case, world)}


def _auth_headers(case, world) -> dict:
    if not case.operation.definition.raw.get("security"):
        return {}
    user = world["admin"] if case.operation.path == "/api/cache/invalidate" else world["user"]
    if case.operation.path == "/api/auth/logout":  # each example logs out a session of its own
        login = {"username": user.username, "password": user.password}
        token = world["app"].test_client().post("/api/auth/login", json=login).get_json()["access_token"]
        return {"Authorization": f"Bearer {token}"}
    return user.headers


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_every_error_in_api_shape(case, world):
    response = case.call(app=world["app"], headers=_headers(case, world))
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    case.validate_response(
        response, checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    if 400 <= response.status_code < 500:
        assert_error(_Flaskish(response), response.status_code)


class _Flaskish:
    """The few attributes of a Flask test response that assert_error reads."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = Headers([(name, value) for name, values in response.headers.items() for value in values])
        self.mimetype = self.headers.get("Content-Type", "").split(";")[0].strip()
        self._response = response

    def get_json(self):
        return self._response.json()

    def get_data(self, as_text=False):
        return self._response.text if as_text else self._response.content
