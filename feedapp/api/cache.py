"""GET /api/cache/stats and POST /api/cache/invalidate (admin)."""
from flask import Blueprint, g, jsonify, request

from ..auth import bearer_token
from ..errors import APIError, forbidden, validation_error
from ..observability.report import stats_report
from ..schemas import InvalidateSchema
from . import auth_required, caller_id, json_body, resources

bp = Blueprint("cache", __name__, url_prefix="/api/cache")
invalidate_schema = InvalidateSchema()


@bp.get("/stats")
def stats():
    """Public aggregate numbers; which workers run where (host names, pids) only in
    development or for an admin's live token: it maps the deployment for an attacker."""
    identities = not resources().config.production or _caller_is_admin()
    return jsonify(stats_report(resources(), identities=identities))


def _caller_is_admin() -> bool:
    """Whether the request carries an admin's live token; any other token counts as none."""
    header = request.headers.get("Authorization")
    if not header:
        return False
    try:
        g.claims = resources().tokens.authenticate(bearer_token(header))
        return resources().profiles.is_admin(caller_id())
    except APIError:
        return False


@bp.post("/invalidate")
@auth_required
def invalidate():
    if not resources().profiles.is_admin(caller_id()):
        raise forbidden("Only an admin may invalidate the cache")
    data = json_body(invalidate_schema)
    keys = resources().keys
    if "keys" in data:
        targets = [_cache_key(keys, text, "keys") for text in data["keys"]]
        count = resources().writer.invalidate(keys=targets)
    else:
        count = resources().writer.invalidate(prefixes=[_cache_key(keys, data["prefix"], "prefix")])
    return jsonify({"invalidated": count})


def _cache_key(keys, text, field):
    try:
        return keys.from_client(text)
    except ValueError as err:
        raise validation_error({field: [str(err)]}) from None
