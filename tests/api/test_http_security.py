"""CORS (CORS_ORIGINS) and the security headers every response carries."""
import pytest
from flask import abort

from feedapp import HSTS, SECURITY_HEADERS, create_app

from .helpers import UNKNOWN_ID, assert_error, big_body, raw_json

ALLOWED = "https://app.example.com"
EXPOSED = {"X-Cache", "ETag", "X-Request-ID", "Retry-After"}


def build(config, **overrides):
    app = create_app(config.with_overrides(**overrides))
    app.extensions["feedapp"].start()
    app.config["TESTING"] = True

    @app.get("/api/test-crash")  # a route with a bug, for the 500 handler
    def crash():
        raise RuntimeError("boom")

    @app.get("/api/test-abort-500")
    def abort_500():
        abort(500)

    return app


@pytest.fixture
def cors_app(config, redis_client):
    app = build(config, cors_origins=(ALLOWED, "http://localhost:3000"), cors_max_age=900)
    yield app
    app.extensions["feedapp"].close()


@pytest.fixture
def cors_client(cors_app):
    return cors_app.test_client()


def preflight(client, path, origin=ALLOWED, method="POST", headers="authorization, content-type"):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers,
    })


def vary(response):
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",") if v.strip()}


# --- CORS -------------------------------------------------------------------------------------


def test_no_cors_headers_without_configured_origins(client):
    response = client.get("/healthz", headers={"Origin": ALLOWED})
    assert not [h for h in response.headers.keys() if h.lower().startswith("access-control-")]
    response = preflight(client, "/api/posts")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_from_an_allowed_origin(cors_client):
    response = preflight(cors_client, "/api/posts")
    assert response.status_code == 204 and response.get_data() == b""
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST"} <= methods and "DELETE" not in methods
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert response.headers["Access-Control-Max-Age"] == "900"
    assert "origin" in vary(response)
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_lists_the_methods_of_that_path(cors_client):
    response = preflight(cors_client, f"/api/posts/{UNKNOWN_ID}", method="DELETE")
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "DELETE"} <= methods and "POST" not in methods
    me = preflight(cors_client, "/api/me", method="PATCH")
    assert "PATCH" in me.headers["Access-Control-Allow-Methods"]


def test_preflight_from_another_origin_gets_no_grant(cors_client):
    response = preflight(cors_client, "/api/posts", origin="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers
    assert "origin" in vary(response)


def test_preflight_to_an_unknown_path_is_a_json_404(cors_client):
    assert_error(preflight(cors_client, "/api/nothing-here"), 404, "not_found")


def test_actual_requests_from_an_allowed_origin_expose_the_client_headers(cors_client):
    body = {"username": "alice", "email": "a@example.com", "password": "password123"}
    alice = cors_client.post("/api/auth/register", json=body).get_json()["user"]
    response = cors_client.get(f"/api/users/{alice['id']}", headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 200 and response.headers["X-Cache"] == "L3"
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert EXPOSED <= exposed
    assert "origin" in vary(response)


def test_errors_carry_cors_headers_too(cors_client):
    response = cors_client.get("/api/me", headers={"Origin": ALLOWED})
    assert_error(response, 401)
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_requests_from_other_origins_get_no_grant_but_vary(cors_client):
    response = cors_client.get("/healthz", headers={"Origin": "https://app.example.com.evil.net"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "origin" in vary(response)


def test_cors_origins_are_parsed_from_the_environment():
    from feedapp.config import Config, ConfigError

    config = Config.from_env({"CORS_ORIGINS": " https://A.example.com/ , http://localhost:3000", "JWT_SECRET": "s" * 40})
    assert config.cors_origins == ("https://a.example.com", "http://localhost:3000")
    assert Config.from_env({"JWT_SECRET": "s" * 40}).cors_origins == ()
    for bad in ("*", "app.example.com", "https://a.example.com/path", "ftp://x"):
        with pytest.raises(ConfigError, match="CORS_ORIGINS"):
            Config.from_env({"CORS_ORIGINS": bad, "JWT_SECRET": "s" * 40})


# --- security headers -------------------------------------------------------------------------


def assert_security_headers(response, production, what):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name), (what, name, dict(response.headers))
        if name != "Content-Security-Policy":
            assert response.headers[name] == value, (what, name)
    assert ("Strict-Transport-Security" in response.headers) == production, what
    if production:
        assert response.headers["Strict-Transport-Security"] == HSTS


@pytest.fixture(params=["development", "production"])
def any_env_client(request, config, redis_client):
    app = build(config, env=request.param)
    yield app.test_client(), request.param == "production"
    app.extensions["feedapp"].close()


def test_security_headers_on_every_kind_of_response(any_env_client):
    client, production = any_env_client
    responses = {
        "200 json": client.get("/healthz"),
        "201": client.post("/api/auth/register", json={"username": "zed", "email": "z@example.com", "password": "password123"}),
        "400": raw_json(client, "POST", "/api/posts", "{"),
        "401": client.get("/api/me"),
        "404": client.get("/nowhere"),
        "405": client.put("/healthz"),
        "413": raw_json(client, "POST", "/api/auth/login", big_body()),
        "500": client.get("/api/test-crash"),
        "500 abort": client.get("/api/test-abort-500"),
        "dashboard": client.get("/dashboard"),
        "web client": client.get("/u/alice"),
        "api docs": client.get("/api/docs"),
        "metrics": client.get("/metrics"),
        "static": client.get("/static/dashboard.js"),
    }
    for what, response in responses.items():
        assert_security_headers(response, production, what)
    assert_error(responses["500"], 500, "internal_error")
    assert "default-src 'none'" in responses["404"].headers["Content-Security-Policy"]
    for page in ("dashboard", "web client", "api docs"):
        assert "script-src 'self'" in responses[page].headers["Content-Security-Policy"], page


def test_api_answers_are_not_stored_by_caches(client, make_user):
    alice = make_user("alice")
    login = client.post("/api/auth/login", json={"username": "alice", "password": alice.password})
    assert login.headers["Cache-Control"] == "no-store"
    assert client.get("/api/me", headers=alice.headers).headers["Cache-Control"] == "no-store"
    assert client.get(f"/api/users/{alice.id}").headers["Cache-Control"] == "no-cache"  # ETag revalidation
