"""GET /healthz, /readyz and /metrics."""
from flask import Blueprint, Response, jsonify

from ..errors import RETRY_AFTER
from . import worker
from .web import static_page

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    body = worker().operations.readiness()
    if body["mongo"] == "ok":
        return jsonify(body), 200
    return jsonify(body), 503, {"Retry-After": RETRY_AFTER}


@bp.get("/dashboard")
def dashboard():
    """The live cache dashboard (static HTML and script; it polls /api/cache/stats)."""
    return static_page(
        "dashboard.html",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:",
    )


@bp.get("/api/openapi.json")
def openapi():
    from ..http.openapi import build_spec

    return jsonify(build_spec())


@bp.get("/metrics")
def metrics():
    from ..observability.metrics import TotalsCollector, render

    return Response(render([TotalsCollector(worker().stats)]), mimetype="text/plain; version=0.0.4; charset=utf-8")
