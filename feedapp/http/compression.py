"""Compressed answers: `br` where the request's Accept-Encoding allows it, else `gzip`.

Rules (API.md "Compression"):
- Only bodies of MIN_SIZE bytes or more, of a text type, are worth it; 304s, 204s, 206s, HEAD
  answers and bodies that already have a Content-Encoding are sent as they are. Streams are
  not buffered to compress them (files sent by werkzeug are read whole: they are small).
- Every answer that could have been compressed (304 and HEAD included) says `Vary:
  Accept-Encoding`, so shared caches keep one copy per encoding.
- The client's q-values decide: the highest wins, `br` on a tie, `q=0` refuses a coding,
  `*` names both, and neither acceptable means no compression.
- ETags stay those of the uncompressed body (feedapp.api._conditional computes them before
  this runs), so a tag received in one encoding earns a 304 in any other. A compressed answer
  sends its tag weak (`W/"…"`, as nginx does): the bytes differ per encoding, the content does
  not, and If-None-Match compares weakly.

Why a hook of our own rather than Flask-Compress (bench/compression.py measures both):
Flask-Compress appends the coding to a strong ETag (`"tag:br"`), so a tag from one encoding
no longer matches in another, and runs werkzeug's make_conditional again on every answer.
The levels come from the same benchmark, on a 100-post feed page: br quality 2 comes within
~2.5 % of quality 4's size for under half its CPU (5 and up save 5 % more for 4–5× the CPU),
and is smaller and cheaper than any useful gzip level; gzip level 4 is ~7 % smaller than level
1 for ~1.6× its CPU, where level 6 saves 2.5 % more for twice as much.
"""
import functools
import zlib

import brotli
from flask import request
from werkzeug.http import parse_accept_header

MIN_SIZE = 1024
BROTLI_QUALITY = 2
GZIP_LEVEL = 4
COMPRESSIBLE = frozenset({
    "application/json", "application/javascript", "text/javascript", "text/html", "text/css",
    "text/plain", "image/svg+xml",
})
NO_BODY = (204, 206, 304)


def _gzip(data: bytes) -> bytes:
    return zlib.compress(data, GZIP_LEVEL, wbits=31)  # wbits 31: a gzip member (mtime 0)


def _brotli(data: bytes) -> bytes:
    return brotli.compress(data, quality=BROTLI_QUALITY)


ENCODERS = {"br": _brotli, "gzip": _gzip}


def init_app(app):
    """Register the hook. Register it before every other after-request hook: Flask runs them
    in reverse order, and this one must see the final body and headers."""
    app.after_request(compress)


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct headers
def chosen_coding(accept_encoding: str) -> str | None:
    """"br", "gzip" or None for an Accept-Encoding header, by its q-values (br on a tie)."""
    accepted = parse_accept_header(accept_encoding)
    best = max(ENCODERS, key=accepted.quality)  # ENCODERS lists br first: it wins ties
    return best if accepted.quality(best) > 0 else None


def compress(response):
    """The after-request hook: see the module docstring."""
    if not _could_vary(response):
        return response
    response.vary.add("Accept-Encoding")
    coding = chosen_coding(request.headers.get("Accept-Encoding", ""))
    if coding is None:
        return response
    _weaken_etag(response)  # also on a 304 or HEAD: the tag a compressed 200 would carry
    if response.status_code in NO_BODY or request.method == "HEAD":
        return response
    response.direct_passthrough = False  # a file werkzeug would have streamed: read it
    response.set_data(_compressed(response, coding))
    response.headers["Content-Encoding"] = coding
    response.headers.pop("Accept-Ranges", None)  # ranges would be of the compressed bytes
    return response


def _compressed(response, coding: str) -> bytes:
    """The body compressed; made once per cached value when the answer is one's
    representation (feedapp/http/representations.py) and its body is still that one."""
    representation = getattr(response, "representation", None)
    body = response.response
    if representation is not None and len(body) == 1 and body[0] is representation.body:
        return representation.encoded(coding, ENCODERS[coding])
    return ENCODERS[coding](response.get_data())


def _could_vary(response) -> bool:
    """Whether this answer's body is one that is compressed when the client allows it."""
    length = response.content_length  # first: most answers are small, and this is the cheapest
    if length is None or length < MIN_SIZE:
        return False
    if response.mimetype not in COMPRESSIBLE or "Content-Encoding" in response.headers:
        return False
    return not (response.is_streamed and not response.direct_passthrough)  # a generator: never buffered


def _weaken_etag(response):
    tag, weak = response.get_etag()
    if tag and not weak:
        response.set_etag(tag, weak=True)
