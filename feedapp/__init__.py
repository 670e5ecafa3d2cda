"""feedapp: a social-feed service whose reads go through cache tiers (see docs/design.md)."""
import logging
import os

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Config
from .http.json_provider import ORJSONProvider

# Every response, errors included. JSON needs no sources: CSP forbids everything and framing.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_SECURITY_ITEMS = tuple(SECURITY_HEADERS.items())
HSTS = "max-age=31536000; includeSubDomains"


def create_app(config: Config | None = None, *, worker=None) -> Flask:
    """The WSGI app serving `worker` (default: `build_worker(config)`, this process's own,
    not started: gunicorn's post_worker_init, the CLI or a test starts it; see
    feedapp/runtime/worker.py). config: default `Config.from_env()`."""
    from . import errors
    from .api import register_blueprints
    from .api.replay import AnswerReplay
    from .cache.tracing import start_request_trace
    from .http import compression, cors
    from .observability import requestlog
    from .runtime import cli
    from .runtime.worker import build_worker

    config = worker.config if worker is not None else config or Config.from_env()
    logging.basicConfig(level=config.log_level)
    app = Flask(__name__)
    app.json = ORJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    worker = app.extensions["feedapp"] = worker if worker is not None else build_worker(config)
    app.before_request(_starter(worker))
    compression.init_app(app)  # the first after-request hook registered runs last
    errors.init_app(app)
    register_blueprints(app)
    cli.init_app(app)
    app.before_request(start_request_trace)
    requestlog.init_app(app)
    app.after_request(_security_headers)
    if config.production:
        app.after_request(_hsts)
    else:
        app.after_request(_worker_header)
    cors.init_app(app, config.cors_origins, config.cors_max_age)
    app.wsgi_app = AnswerReplay(app.wsgi_app, worker, config.l1_max_bytes)  # L1-made answers again, without Flask
    if config.trusted_proxies:
        # Behind N proxies, the client address is the Nth from the right of X-Forwarded-For.
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    return app


def _starter(worker):
    """gunicorn's post_worker_init starts the worker before it serves; under any other server
    (`flask run`, another WSGI server, gunicorn without gunicorn.conf.py) the first request
    does. Afterwards it is one attribute read per request."""

    def start_worker():
        if not worker.started:
            worker.start()

    return start_worker


def _worker_header(response):
    # Which worker answered: lets tests and operators see requests spread across workers.
    response.headers.add("X-Worker", str(os.getpid()))
    return response


def _security_headers(response):
    headers = response.headers
    # One scan for the names a view set itself (a page's own CSP) and one extend: a setdefault
    # per header scans the list once each (~15 µs a response).
    present = {name.lower() for name, _ in headers.items()}
    headers.extend([item for item in _SECURITY_ITEMS if item[0].lower() not in present])
    if "cache-control" not in present and request.path.startswith("/api/"):
        headers["Cache-Control"] = "no-store"  # tokens and private profiles
    return response


def _hsts(response):
    # Production is served over HTTPS (by the app or its proxy): browsers must never downgrade.
    response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response
