"""GET /api/cache/stats and POST /api/cache/invalidate (admin)."""
from flask import Blueprint, g, jsonify, request

from ..auth import bearer_token
from ..errors import APIError
from ..observability.report import stats_report
from ..schemas import InvalidateSchema
from . import auth_required, caller_id, json_body, worker

bp = Blueprint("cache", __name__, url_prefix="/api/cache")
invalidate_schema = InvalidateSchema()


@bp.get("/stats")
def stats():
    """Public aggregate numbers; which workers run where (host names, pids) only in
    development or for an admin's live token: it maps the deployment for an attacker."""
    identities = not worker().config.production or _caller_is_admin()
    return jsonify(stats_report(worker(), identities=identities))


def _caller_is_admin() -> bool:
    """Whether the request carries an admin's live token; any other token counts as none."""
    header = request.headers.get("Authorization")
    if not header:
        return False
    try:
        g.claims = worker().tokens.authenticate(bearer_token(header))
        return worker().profiles.is_admin(caller_id())
    except APIError:
        return False


@bp.post("/invalidate")
@auth_required
def invalidate():
    operations = worker().operations
    operations.require_admin(caller_id())  # before the body: a non-admin learns nothing of its checks
    data = json_body(invalidate_schema)
    return jsonify({"invalidated": operations.invalidate(data.get("keys"), data.get("prefix"))})
