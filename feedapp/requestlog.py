"""One JSON line per request (route, status, latency, cache tier, request id) on the
`feedapp.access` logger, and an `X-Request-ID` on every response (the client's, when it sent a
sane one, so a request can be followed across proxies)."""
import json
import logging
import os
import re
import time
import uuid

from flask import current_app, g, request

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
    route = request.url_rule.rule if request.url_rule else None
    family = g.get("family")  # set by cacheable responses
    seconds = time.perf_counter() - started if started is not None else None
    if seconds is not None:
        metrics.observe(route, request.method, response.status_code, family, tiers.deepest(), seconds)
        if family is not None:  # the dashboard's percentiles, summed over every app server
            current_app.extensions["feedapp"].stats.count(f"latency.{metrics.bucket_name(seconds)}")
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps({
            "event": "request",
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": response.status_code,
            "latency_ms": round(seconds * 1000, 3) if seconds is not None else None,
            "tier": tiers.deepest(),
            "family": family,
            "request_id": request_id,
            "worker": os.getpid(),
        }))
    return response
