"""APIError and the handlers that turn every failure into API.md's JSON error shape."""
import logging

from flask import jsonify
from marshmallow import ValidationError
from pymongo.errors import ConnectionFailure, WriteConcernError
from redis.exceptions import RedisClusterException, RedisError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Werkzeug's HTTP errors, named by the stable codes of API.md.
HTTP_CODES = {
    400: "invalid_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "idempotency_mismatch",
    429: "too_many_requests",
    503: "service_unavailable",
}


class APIError(Exception):
    """An error the client should see: HTTP status, stable code, message, optional details."""

    def __init__(self, status, code, message, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def invalid_id():
    return APIError(400, "invalid_id", "Malformed id: expected 24 hexadecimal characters")


def not_found(what):
    return APIError(404, "not_found", f"{what} not found")


def unauthorized(message="Authentication required"):
    return APIError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message="You are not allowed to do this"):
    return APIError(403, "forbidden", message)


def conflict(message, details=None):
    return APIError(409, "conflict", message, details)


def idempotency_mismatch():
    return APIError(422, "idempotency_mismatch", "This Idempotency-Key was used with a different request body")


def validation_error(details, message="Invalid input"):
    return APIError(400, "validation_error", message, details)


RETRY_AFTER = "1"  # seconds, on every 503: a backing service is back within a few


def unavailable(message="A backing service is unavailable; try again shortly"):
    return APIError(503, "service_unavailable", message, headers={"Retry-After": RETRY_AFTER})


def error_response(status, code, message, details=None, headers=None):
    body = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def field_messages(messages: dict) -> dict:
    """marshmallow's messages as API.md's details: each field -> a flat list of strings.

    Errors inside a list or nested object ({"keys": {0: [...]}}) stay under their top-level
    field, each message prefixed with where it applies ("[0] Not a valid string.").
    """
    return {str(field): _flatten(value) for field, value in messages.items()}


def _flatten(value, where="") -> list:
    if isinstance(value, dict):
        return [m for key, inner in value.items() for m in _flatten(inner, f"{where}[{key}]")]
    if isinstance(value, (list, tuple)):
        return [m for inner in value for m in _flatten(inner, where)]
    return [f"{where} {value}" if where else str(value)]


def init_app(app):
    """Answer every failure in API.md's error shape: the client's own with its 4xx, a backing
    service down with 503 and Retry-After, anything else with 500."""
    _handle_client_errors(app)
    _handle_unavailable_services(app)
    _handle_unexpected_errors(app)


def _api_error_response(err: APIError):
    return error_response(err.status, err.code, err.message, err.details, err.headers)


def _handle_client_errors(app):
    app.register_error_handler(APIError, _api_error_response)

    @app.errorhandler(ValidationError)
    def handle_validation(err):
        details = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
        return error_response(400, "validation_error", "Invalid input", field_messages(details))

    @app.errorhandler(HTTPException)
    def handle_http(err):
        code = HTTP_CODES.get(err.code, "error")
        headers = {}
        if err.code == 405 and err.valid_methods:
            headers["Allow"] = ", ".join(sorted(err.valid_methods))
        return error_response(err.code, code, err.description or err.name, headers=headers)


def _handle_unavailable_services(app):
    # pymongo's ConnectionFailure covers the embedded store too: it reports its SQLite errors
    # as AutoReconnect (docstore/database.py, translate_errors).
    @app.errorhandler(ConnectionFailure)
    def handle_mongo(err):
        log.warning("MongoDB error: %r", err)
        return _api_error_response(unavailable("The database is unavailable; try again shortly"))

    @app.errorhandler(WriteConcernError)  # e.g. w=majority not reached within MONGO_WTIMEOUT_MS
    def handle_unconfirmed_write(err):
        log.warning("MongoDB could not confirm a write: %r", err)
        return _api_error_response(unavailable("The database could not confirm the write in time; retry it"))

    @app.errorhandler(RedisError)
    @app.errorhandler(RedisClusterException)  # not a RedisError (e.g. a slot uncovered in a failover)
    def handle_redis(err):
        log.warning("Redis error: %r", err)
        return _api_error_response(unavailable("The session store is unavailable; try again shortly"))


def _handle_unexpected_errors(app):
    @app.errorhandler(Exception)
    def handle_unexpected(err):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Internal server error")
