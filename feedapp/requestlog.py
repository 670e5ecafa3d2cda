"""One JSON line per request (route, status, latency, cache tier, request id) on the
`feedapp.access` logger, and an `X-Request-ID` on every response (the client's, when it sent a
sane one, so a request can be followed across proxies)."""
import json
import logging
import os
import re
import time
import uuid

from flask import g, request

from . import metrics
from .cache.tiered import tiers

log = logging.getLogger("feedapp.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")


def init_app(app):
    app.before_request(_start)
    app.after_request(_finish)


def _start():
    g.started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _finish(response):
    request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    started = getattr(g, "started", None)
    if started is not None:
        route = request.url_rule.rule if request.url_rule else None
        metrics.observe(route, request.method, response.status_code, tiers.deepest(), time.perf_counter() - started)
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps({
            "event": "request",
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            "path": request.path,
            "status": response.status_code,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3) if started else None,
            "tier": tiers.deepest(),
            "request_id": request_id,
            "worker": os.getpid(),
        }))
    return response
