"""Blueprints (thin: parse → call a service → dump) and the helpers they share."""
import json
import re
from functools import wraps

from bson import ObjectId
from flask import current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_etags, quote_etag

from ..auth import bearer_token
from ..cache.tracing import deepest_tier, sources
from ..errors import APIError, invalid_id, unauthorized, validation_error
from ..http.representations import Representation, Representations
from ..schemas import parse_object_id
from . import replay


def worker():
    """This process's Worker: its services, clients and settings (feedapp/runtime/worker.py)."""
    return current_app.extensions["feedapp"]


def path_id(text: str) -> ObjectId:
    """An id from the URL path; 400 invalid_id before any cache or database is touched."""
    try:
        return parse_object_id(text)
    except ValueError:
        raise invalid_id() from None


def json_body(schema) -> dict:
    """The request body, which must be a JSON object, validated by `schema`."""
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw) if raw.strip() else None
        # json accepts escaped lone surrogates ("\ud800"); no store or hash can encode them.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        raise APIError(400, "invalid_json", "Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise APIError(400, "invalid_json", "Request body must be a JSON object")
    return schema.load(data)


def query_args(schema) -> dict:
    """The query string, validated by `schema` (first value of each repeated parameter)."""
    return schema.load(request.args.to_dict(flat=True))


IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header (None without one); 400 when malformed."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise validation_error({"Idempotency-Key": ["1 to 64 characters of A-Z, a-z, 0-9, _ and -."]},
                               "Invalid Idempotency-Key header")
    return key


def cacheable(body, held: bool = True):
    """A 200 JSON response for a cacheable GET (see `cacheable_family`): ETag and
    If-None-Match handling. held: body is the very object L1 holds (a profile, a composed
    page), so when it came from L1 its answer is made once (see representations.py); False
    for a body composed anew for each request."""
    encode = current_app.json.encode_body
    if held and deepest_tier() == "L1":
        representation = current_app.extensions["representations"].of(body, encode)
    else:  # decoded or loaded for this request alone: nothing to share
        representation = Representation(body, encode(body))
    replay.offer(sources(), representation.tag, len(representation.body))
    response = current_app.response_class(representation.body, mimetype=current_app.json.mimetype)
    response.representation = representation  # compression.py takes its variants from here
    response.headers.add("Cache-Control", "no-cache")  # add: a new response has none to replace
    return _conditional(response, representation.tag)


def cacheable_family(family: str):
    """Marks a view as a cacheable GET of `family`, so that its answers, errors included,
    carry X-Cache and are counted (`count_cacheable`), and the request log and latency
    histograms name the family."""

    def mark(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            g.family = family
            return view(*args, **kwargs)

        return wrapper

    return mark


def count_cacheable(response):
    """Count every cacheable request once, in the tier that answered it (the one X-Cache
    names): also a 404 from a cached "absent", also a request that joined another's load.
    Not counted: answers no tier gave (a 400 before any lookup, a 503)."""
    family = g.get("family")
    tier = deepest_tier()
    if family is not None and tier is not None and response.status_code in (200, 304, 404):
        worker().stats.count(f"requests.{tier}.{family}")
        response.headers.add("X-Cache", tier)
    return response


def _conditional(response, tag: str):
    """The body's ETag (`tag`, its SHA-1), and 304 when If-None-Match names it (weak
    comparison, `*` included): what werkzeug's add_etag + make_conditional do for these
    responses, without their ~60 µs per response (range handling, a Date header gunicorn sets
    anyway). The rare If-Match request still goes through werkzeug (412 handling)."""
    response.headers.add("ETag", quote_etag(tag))
    if "If-Match" in request.headers:
        return response.make_conditional(request)
    wanted = request.headers.get("If-None-Match")
    if wanted and parse_etags(wanted).contains_weak(tag):
        response.status_code = 304  # werkzeug drops the body and entity headers when it sends it
    return response


def auth_required(view):
    """Require a live access token; the view finds its claims in `g.claims`."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = bearer_token(request.headers.get("Authorization"))
        g.claims = worker().tokens.authenticate(token)
        return view(*args, **kwargs)

    return wrapper


def caller_id() -> ObjectId:
    """The authenticated caller's user id."""
    try:
        return ObjectId(g.claims.user_id)
    except Exception:  # noqa: BLE001 - a signed token with a bad sub is still a bad token
        raise unauthorized("Invalid token") from None


def reject_large_bodies():
    """413 for any body over the limit, also on routes that never read their body."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def register_blueprints(app):
    from . import auth, cache, feed, ops, posts, users, web

    app.extensions["representations"] = Representations()
    app.before_request(reject_large_bodies)
    app.after_request(count_cacheable)
    for module in (auth, users, posts, feed, cache, ops, web):
        app.register_blueprint(module.bp)
