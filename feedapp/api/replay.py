"""Cached answers given again without the framework: a lookup and a write of bytes.

A cacheable GET whose reads all returned values L1 holds (its hits, and what it loaded and
filled into L1) is a function of its path and query, of those values, and of the two request
headers such an answer depends on (Accept-Encoding picks its coding, If-None-Match makes it a
304). Flask's answer to one (status, headers, body) is kept with the values it was made from; a
later request for the same path, query and variant gets those bytes again while L1 still holds
every one of those values (`TieredCache.still_holds`: the check, and the trust, an L1 hit
makes), without a request context, routing or hooks. Whatever evicts one of the values (a write
anywhere, its TTL, L1's size bound, a lost invalidation stream) sends the next request through
Flask, whose answer is kept in its place.

Each replay does what a Flask answer does per request: its own X-Request-ID (the client's
when sane), the L1 hit counter of each read, the request's tier counter, its latency histogram
and bucket, its log line. Requests whose answer could differ otherwise go through Flask: any
method but GET, a request body, `Origin` (CORS), `If-Match`, a worker not started; answers made
for an authenticated caller are never kept.

Bounded per worker in entries and in bytes, L1_MAX_BYTES (the bodies, and the L1 values each
answer holds on to, which outlive their eviction from L1 until the answer goes), least recently
used out first; an answer found outdated is dropped at once.
"""
import os
import threading
import time
from collections import OrderedDict

from flask import g, request
from werkzeug.http import parse_etags

from ..http.compression import chosen_coding
from ..observability.requestlog import record, request_id_for

MAX_ANSWERS = 32768  # per worker: distinct paths and queries
# A kept answer holds the L1 values it was made from, which outlive their eviction from L1
# until the answer goes: counted as this many times its JSON body (decoded JSON takes ~2-4x).
VALUES_PER_BODY_BYTE = 4
_SOURCES = "feedapp.answer_sources"  # the environ item cacheable() leaves for the replay


def offer(sources, tag: str, body_size: int):
    """Offer the answer being made for replay: it was made from L1 `sources` alone
    (tracing.sources()), its ETag is `tag` and its JSON body `body_size` bytes long. Kept only
    when it turns out a 200 or 304, and never when it was made for an authenticated caller."""
    if sources and "claims" not in g:
        rule = request.url_rule.rule if request.url_rule else None
        request.environ[_SOURCES] = (sources, tag, g.get("family"), rule, request.path, body_size)


class Variant:
    """One kept answer: status line, headers (the X-Request-ID one at `id_at`), body."""

    __slots__ = ("status", "code", "headers", "id_at", "body")

    def __init__(self, status: str, headers: list, body: bytes):
        self.status, self.code, self.body = status, int(status[:3]), body
        self.headers = headers
        self.id_at = next(i for i, (name, _) in enumerate(headers) if name == "X-Request-ID")


class Kept:
    """The answers to one path and query, and the L1 values they were made from."""

    __slots__ = ("sources", "tag", "family", "route", "path", "tier_counter", "variants", "size")

    def __init__(self, key, sources, tag, family, route, path, body_size):
        self.sources, self.tag, self.family, self.route, self.path = sources, tag, family, route, path
        self.tier_counter = f"requests.L1.{family}"
        self.variants = {}  # (coding or None, If-None-Match matched) -> Variant
        self.size = sum(map(len, key)) + VALUES_PER_BODY_BYTE * body_size

    def made_from(self, sources) -> bool:
        return len(sources) == len(self.sources) and all(
            key == kept_key and value is kept_value
            for (key, value, _), (kept_key, kept_value, _) in zip(sources, self.sources))


class AnswerReplay:
    """WSGI middleware around the Flask app of `worker`: see the module docstring."""

    def __init__(self, app, worker, max_bytes: int):
        """max_bytes: the budget of the kept answers, the values they hold on to counted in
        (see Kept.size); feedapp gives them L1_MAX_BYTES, L1's own budget, again."""
        self.app, self.worker, self.max_bytes = app, worker, max_bytes
        self._kept = OrderedDict()  # (script, path, query) -> Kept; read without the lock, least recently used first
        self._bytes = 0
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self._kept)

    def __call__(self, environ, start_response):
        replayed = self._replay(environ, start_response)
        if replayed is not None:
            return replayed
        return self._through_flask(environ, start_response)

    # --- the replay -----------------------------------------------------------------------------

    def _replay(self, environ, start_response):
        started = time.perf_counter()
        if environ["REQUEST_METHOD"] != "GET" or not _plain(environ):
            return None
        key = _key(environ)
        kept = self._kept.get(key)
        if kept is None or not self.worker.started or os.getpid() != self._pid:
            return None
        variant = kept.variants.get(_variant_key(environ, kept.tag))
        if variant is None:
            return None
        if not self.worker.cache.still_holds(kept.sources):
            self._forget(key, kept)  # it would never be given again: let its values go
            return None
        with self._lock:
            if self._kept.get(key) is kept:
                self._kept.move_to_end(key)
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID", ""))
        headers = variant.headers.copy()
        headers[variant.id_at] = ("X-Request-ID", request_id)
        start_response(variant.status, headers)
        stats = self.worker.stats
        for _, _, counter in kept.sources:
            stats.count(counter)
        stats.count(kept.tier_counter)
        stats.count("answers.replayed")
        record(stats, "GET", kept.route, kept.path, variant.code, time.perf_counter() - started, kept.family, "L1",
               request_id)
        return [variant.body]

    # --- keeping Flask's answers -------------------------------------------------------------

    def _through_flask(self, environ, start_response):
        answered = []

        def capture(status, headers, exc_info=None):
            answered.append((status, list(headers)))
            return start_response(status, headers, exc_info)

        body = self.app(environ, capture)
        offered = environ.get(_SOURCES)
        if offered is None or not answered or answered[-1][0][:3] not in ("200", "304"):
            return body
        if environ["REQUEST_METHOD"] != "GET" or not _plain(environ) or os.getpid() != self._pid:
            return body  # a HEAD's empty body, CORS headers: not what a plain GET is answered
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        status, headers = answered[-1]
        # Given again, it is an L1 hit, whichever tier this answer's values were loaded from.
        headers = [("X-Cache", "L1") if name == "X-Cache" else (name, value) for name, value in headers]
        self._keep(_key(environ), _variant_key(environ, offered[1]), offered, Variant(status, headers, data))
        return [data]

    def _keep(self, key, variant_key, offered, variant: Variant):
        sources = offered[0]
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or not kept.made_from(sources):
                self._drop(key)
                kept = self._kept[key] = Kept(key, *offered)
                self._bytes += kept.size
            self._kept.move_to_end(key)
            old = kept.variants.get(variant_key)
            added = _size(variant) - (_size(old) if old else 0)
            kept.variants[variant_key] = variant
            kept.size += added
            self._bytes += added
            while (self._bytes > self.max_bytes or len(self._kept) > MAX_ANSWERS) and self._kept:
                self._drop(next(iter(self._kept)))  # the least recently used first

    def _forget(self, key, kept: Kept):
        with self._lock:
            if self._kept.get(key) is kept:
                self._drop(key)

    def _drop(self, key):
        kept = self._kept.pop(key, None)
        if kept is not None:
            self._bytes -= kept.size


def _size(variant: Variant) -> int:
    return len(variant.body) + 64 * len(variant.headers)  # headers: roughly, by their number


def _key(environ) -> tuple:
    return environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")


def _plain(environ) -> bool:
    """No part of the request but its path, query, Accept-Encoding and If-None-Match could
    change its answer (a body could make it a 413; Origin adds CORS headers)."""
    return (environ.get("CONTENT_LENGTH") in (None, "", "0") and "HTTP_TRANSFER_ENCODING" not in environ
            and "HTTP_ORIGIN" not in environ and "HTTP_IF_MATCH" not in environ)


def _variant_key(environ, tag: str) -> tuple:
    coding = chosen_coding(environ.get("HTTP_ACCEPT_ENCODING", ""))
    wanted = environ.get("HTTP_IF_NONE_MATCH")
    return coding, bool(wanted) and parse_etags(wanted).contains_weak(tag)
