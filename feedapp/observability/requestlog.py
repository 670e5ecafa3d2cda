"""One JSON line per request (route, status, latency, cache tier, request id) on the
`feedapp.access` logger, and an `X-Request-ID` on every response (the client's, when it sent a
sane one, so a request can be followed across proxies)."""
import itertools
import json
import logging
import os
import re
import time

from flask import current_app, g, request

from ..cache.tracing import deepest_tier
from . import metrics

log = logging.getLogger("feedapp.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")


def _new_ids():
    global _ids
    _ids = (os.urandom(8).hex(), itertools.count())


_new_ids()
os.register_at_fork(after_in_child=_new_ids)  # each worker its own prefix


def new_request_id() -> str:
    """32 hex digits unique across processes: a random prefix per process and a counter
    (uuid4 costs a system call for 16 random bytes on every request)."""
    prefix, counter = _ids
    return f"{prefix}{next(counter):016x}"


def init_app(app):
    app.before_request(_start)
    app.after_request(_finish)


def _start():
    g.started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.match(given) else new_request_id()


def _finish(response):
    request_id = getattr(g, "request_id", None) or new_request_id()
    response.headers.add("X-Request-ID", request_id)  # only set here: nothing to replace
    started = getattr(g, "started", None)
    route = request.url_rule.rule if request.url_rule else None
    family = g.get("family")  # set by cacheable responses
    seconds = time.perf_counter() - started if started is not None else None
    if seconds is not None:
        metrics.observe(route, request.method, response.status_code, family, deepest_tier(), seconds)
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
            "tier": deepest_tier(),
            "family": family,
            "request_id": request_id,
            "worker": os.getpid(),
        }))
    return response
