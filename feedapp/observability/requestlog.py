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


def request_id_for(given: str) -> str:
    """The id of a request that sent X-Request-ID `given` ("" when it sent none): the client's
    when sane, else a new one."""
    return given if _REQUEST_ID.match(given) else new_request_id()


def _start():
    g.started = time.perf_counter()
    g.request_id = request_id_for(request.headers.get("X-Request-ID", ""))


def _finish(response):
    request_id = getattr(g, "request_id", None) or new_request_id()
    response.headers.add("X-Request-ID", request_id)  # only set here: nothing to replace
    started = getattr(g, "started", None)  # None: answered before _start ran (a 413)
    seconds = time.perf_counter() - started if started is not None else None
    route = request.url_rule.rule if request.url_rule else None
    record(current_app.extensions["feedapp"].stats, request.method, route, request.path, response.status_code,
           seconds, g.get("family"), deepest_tier(), request_id)
    return response


def record(stats, method, route, path, status, seconds, family, tier, request_id):
    """Account for one answered request: its latency histogram, the dashboard's latency bucket
    (cacheable requests, `family` set) and its log line when INFO is on. seconds: None when
    its start was not seen (the line then has no latency)."""
    if seconds is not None:
        metrics.observe(route, method, status, family, tier, seconds)
        if family is not None:  # the dashboard's percentiles, summed over every app server
            stats.count(f"latency.{metrics.bucket_name(seconds)}")
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps({
            "event": "request",
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "latency_ms": round(seconds * 1000, 3) if seconds is not None else None,
            "tier": tier,
            "family": family,
            "request_id": request_id,
            "worker": os.getpid(),
        }))
