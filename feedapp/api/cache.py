"""GET /api/cache/stats and POST /api/cache/invalidate (admin)."""
from flask import Blueprint, jsonify

from ..errors import forbidden, validation_error
from ..schemas import InvalidateSchema
from ..stats_report import stats_report
from . import auth_required, caller_id, json_body, resources

bp = Blueprint("cache", __name__, url_prefix="/api/cache")
invalidate_schema = InvalidateSchema()


@bp.get("/stats")
def stats():
    return jsonify(stats_report(resources()))


@bp.post("/invalidate")
@auth_required
def invalidate():
    me = resources().repo.get_user(caller_id())
    if not me or me.get("role") != "admin":
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
