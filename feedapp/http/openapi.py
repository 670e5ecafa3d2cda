"""The OpenAPI 3 document of the API, generated from the marshmallow schemas (apispec).

`OPERATIONS` names, for every route and method of the app, its request body and query schemas
and its responses; a test checks that no route of the app is missing from it.
"""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from .. import schemas as s


class AuthorSchema(Schema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String()


class PostSchema(Schema):
    id = fields.String()
    author = fields.Nested(AuthorSchema)
    content = fields.String()
    created_at = fields.String()
    likes_count = fields.Integer()


class ProfilePageSchema(Schema):
    items = fields.List(fields.Nested(s.ProfileSchema))
    next_cursor = fields.String(allow_none=True)


class PostPageSchema(Schema):
    items = fields.List(fields.Nested(PostSchema))
    next_cursor = fields.String(allow_none=True)


class ExplorePageSchema(Schema):
    items = fields.List(fields.Nested(PostSchema))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


class TokensSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class ErrorBodySchema(Schema):
    code = fields.String()
    message = fields.String()
    details = fields.Dict()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema)


class UserEnvelopeSchema(Schema):
    user = fields.Nested(s.PrivateProfileSchema)


OBJECT = {"type": "object"}
TEXT, HTML = "text/plain", "text/html"  # responses that are not JSON: (media type, None)
# Path parameters: what a well-formed value looks like (anything else is 400 invalid_id / 404).
PATH_PARAMETERS = {
    "user_id": {"type": "string", "pattern": "^[0-9a-f]{24}$", "description": "24 hexadecimal characters"},
    "post_id": {"type": "string", "pattern": "^[0-9a-f]{24}$", "description": "24 hexadecimal characters"},
    "username": {"type": "string", "pattern": "^[A-Za-z0-9_]{3,30}$", "description": "any case"},
}
# Answers any route may give, besides those listed per operation.
COMMON_ERRORS = {
    400: "invalid input (invalid_json, validation_error, invalid_id)",
    405: "method_not_allowed",
    413: "payload_too_large (bodies over 64 KiB)",
    503: "service_unavailable (a backing service is down)",
}
NOT_FOUND = {404: "not_found (no such user or post)"}
AUTH_ERRORS = {401: "unauthorized (missing, malformed, expired or revoked token)"}
# (rule, method): summary, request body schema, query schema, auth, {status: response schema}
OPERATIONS = {
    ("/api/auth/register", "post"): ("Register; rate limited per client address", s.RegisterSchema, None, False,
                                     {201: UserEnvelopeSchema, 409: ErrorSchema, 429: ErrorSchema}),
    ("/api/auth/login", "post"): ("Log in (username or email); failures are rate limited", s.LoginSchema, None, False,
                                  {200: TokensSchema, 401: ErrorSchema, 429: ErrorSchema}),
    ("/api/auth/refresh", "post"): ("Rotate the refresh token", s.RefreshSchema, None, False, {200: TokensSchema, 401: ErrorSchema}),
    ("/api/auth/logout", "post"): ("Log out everywhere at once", None, None, True, {200: OBJECT}),
    ("/api/users/<user_id>", "get"): ("A profile", None, None, False, {200: s.ProfileSchema, 404: ErrorSchema}),
    ("/api/users/by-username/<username>", "get"): ("A profile by username", None, None, False, {200: s.ProfileSchema, 404: ErrorSchema}),
    ("/api/me", "get"): ("My private profile", None, None, True, {200: s.PrivateProfileSchema}),
    ("/api/me", "patch"): ("Edit my profile", s.ProfileUpdateSchema, None, True, {200: s.PrivateProfileSchema}),
    ("/api/users/<user_id>/follow", "post"): ("Follow", None, None, True, {200: OBJECT, 404: ErrorSchema}),
    ("/api/users/<user_id>/follow", "delete"): ("Unfollow", None, None, True, {200: OBJECT, 404: ErrorSchema}),
    ("/api/users/<user_id>/following", "get"): ("Whom a user follows", None, s.PageQuerySchema, False, {200: ProfilePageSchema}),
    ("/api/users/<user_id>/followers", "get"): ("Who follows a user", None, s.PageQuerySchema, False, {200: ProfilePageSchema}),
    ("/api/posts", "post"): ("Post (retry safely with an Idempotency-Key)", s.PostCreateSchema, None, True,
                             {201: PostSchema, 422: ErrorSchema}),
    ("/api/posts", "get"): ("Explore", None, s.ExploreQuerySchema, False, {200: ExplorePageSchema}),
    ("/api/posts/<post_id>", "get"): ("A post", None, None, False, {200: PostSchema, 404: ErrorSchema}),
    ("/api/posts/<post_id>", "delete"): ("Delete a post (author or admin)", None, None, True, {204: None, 403: ErrorSchema}),
    ("/api/posts/<post_id>/like", "post"): ("Like", None, None, True, {200: OBJECT, 404: ErrorSchema}),
    ("/api/posts/<post_id>/like", "delete"): ("Unlike", None, None, True, {200: OBJECT, 404: ErrorSchema}),
    ("/api/users/<user_id>/posts", "get"): ("A user's posts", None, s.PageQuerySchema, False, {200: PostPageSchema}),
    ("/api/users/<user_id>/feed", "get"): ("A user's home feed", None, s.PageQuerySchema, False, {200: PostPageSchema}),
    ("/api/feed", "get"): ("My home feed", None, s.PageQuerySchema, True, {200: PostPageSchema}),
    ("/api/cache/stats", "get"): ("Cache statistics of the deployment (which worker runs where: in development or for admins)", None, None, False, {200: OBJECT}),
    ("/api/cache/invalidate", "post"): ("Evict keys or prefixes (admin)", s.InvalidateSchema, None, True, {200: OBJECT, 403: ErrorSchema}),
    ("/api/openapi.json", "get"): ("This document", None, None, False, {200: OBJECT}),
    ("/healthz", "get"): ("Liveness", None, None, False, {200: OBJECT}),
    ("/readyz", "get"): ("Readiness (MongoDB and Redis)", None, None, False, {200: OBJECT, 503: OBJECT}),
    ("/metrics", "get"): ("Prometheus metrics", None, None, False, {200: TEXT}),
    ("/dashboard", "get"): ("Live cache dashboard (HTML page polling /api/cache/stats)", None, None, False, {200: HTML}),
    ("/", "get"): ("Web client: the home feed, or the sign-in form (HTML page)", None, None, False, {200: HTML}),
    ("/explore", "get"): ("Web client: the explore listing (HTML page)", None, None, False, {200: HTML}),
    ("/u/<username>", "get"): ("Web client: a profile and its timeline (HTML page)", None, None, False, {200: HTML}),
    ("/api/docs", "get"): ("This document in Swagger UI, with requests tried against this server (HTML page)",
                           None, None, False, {200: HTML}),
}


# The groups of /api/docs: the first pattern that matches a rule names its group.
TAGS = (
    ("auth", r"^/api/auth/"),
    ("feeds", r"/feed$"),
    ("posts", r"^/api/posts|/posts$"),
    ("users", r"^/api/(users|me)"),
    ("operations", r"^/api/cache/|^/(healthz|readyz|metrics|dashboard)$"),
    ("web client and docs", r""),
)
DESCRIPTION = (
    "The HTTP API of feedapp. To try an operation that needs a token here: log in with "
    "`POST /api/auth/login`, copy its `access_token`, press **Authorize** and paste it."
)


def openapi_path(rule: str) -> str:
    return rule.replace("<", "{").replace(">", "}")


# Request headers a route reads (besides Authorization).
HEADERS = {
    ("/api/posts", "post"): [{
        "in": "header", "name": "Idempotency-Key", "required": False,
        "description": "Repeat the request with the same key and body to get its first answer again (same post, "
                       "no second post); the same key with another body is 422 idempotency_mismatch. "
                       "Remembered at least 24 h, per user.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    }],
}


def build_spec() -> dict:
    spec = APISpec(title="feedapp", version="1.0.0", openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
                   info={"description": DESCRIPTION})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    paths = {}
    for (rule, method), operation in OPERATIONS.items():
        paths.setdefault(rule, {})[method] = _operation(rule, *operation, headers=HEADERS.get((rule, method), []))
    for rule, operations in paths.items():
        spec.path(path=openapi_path(rule), operations=operations)
    return spec.to_dict()


def _operation(rule, summary, body, query, auth, responses, headers=()) -> dict:
    tag = next(name for name, pattern in TAGS if re.search(pattern, rule))
    operation = {"summary": summary, "tags": [tag], "responses": {}}
    params = [{"in": "path", "name": part[1:-1], "required": True, "schema": PATH_PARAMETERS[part[1:-1]]}
              for part in rule.split("/") if part.startswith("<")]
    if query is not None:
        params.append({"in": "query", "schema": query})
    params += headers
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if auth:
        operation["security"] = [{"bearer": []}]
    for status, schema in responses.items():
        operation["responses"][str(status)] = _response(str(status), schema)
    errors = {**COMMON_ERRORS, **(AUTH_ERRORS if auth else {}), **(NOT_FOUND if "<" in rule else {})}
    for status, description in errors.items():
        operation["responses"].setdefault(str(status), _response(description, ErrorSchema))
    return operation


def _response(description, schema) -> dict:
    response = {"description": description}
    if schema in (TEXT, HTML):
        response["content"] = {schema: {"schema": {"type": "string"}}}
    elif schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return response
