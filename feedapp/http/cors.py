"""CORS for browser clients on other origins (CORS_ORIGINS, an exact allow-list).

With no origins configured nothing is added: browsers keep the same-origin policy. With some,
a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed
origin to a served path is answered `204` with that path's methods, the headers clients send
(`Authorization`, `Content-Type`, `If-None-Match`, `X-Request-ID`) and `Access-Control-Max-Age`;
every response carries `Vary: Origin`, and those to an allowed origin carry
`Access-Control-Allow-Origin` (that origin, never `*`) and expose the headers clients read.
Credentials (cookies) are never allowed: clients authenticate with a bearer token.
"""
from flask import current_app, request
from werkzeug.exceptions import HTTPException

ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match, X-Request-ID"
EXPOSED_HEADERS = "X-Cache, ETag, X-Request-ID, Retry-After"


def init_app(app, origins, max_age: int):
    """Answer preflights and add CORS headers for `origins`; do nothing when it is empty."""
    if not origins:
        return
    allowed = frozenset(origins)

    def preflight():
        origin = request.headers.get("Origin")
        if request.method != "OPTIONS" or origin not in allowed:
            return None
        if "Access-Control-Request-Method" not in request.headers:
            return None
        methods = _methods_of(request.path)
        if not methods:
            return None  # unknown path: its JSON 404, with the usual headers
        response = current_app.make_response(("", 204))
        response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(methods))
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(max_age)
        response.vary.update(("Access-Control-Request-Method", "Access-Control-Request-Headers"))
        return response

    def add_headers(response):
        response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, preflight)
    app.after_request(add_headers)


def _methods_of(path: str) -> set:
    adapter = current_app.url_map.bind("localhost")
    try:
        return set(adapter.allowed_methods(path))
    except HTTPException:
        return set()
