"""feedapp: a social-feed service whose reads go through cache tiers (see ARCHITECTURE.md)."""
import logging
import os

from flask import Flask

from .config import Config


def create_app(config: Config | None = None) -> Flask:
    """Build the WSGI app. Creates no client: each process makes its own on first use."""
    from . import cli, errors, requestlog
    from .api import register_blueprints
    from .cache.tiered import tiers
    from .resources import Resources

    config = config or Config.from_env()
    logging.basicConfig(level=config.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.json.compact = True
    app.extensions["feedapp"] = Resources(config)
    errors.init_app(app)
    register_blueprints(app)
    cli.init_app(app)
    app.before_request(tiers.reset)
    requestlog.init_app(app)
    app.after_request(_security_headers)
    if not config.production:
        app.after_request(_worker_header)
    return app


def _worker_header(response):
    # Which worker answered: lets tests and operators see requests spread across workers.
    response.headers["X-Worker"] = str(os.getpid())
    return response


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
