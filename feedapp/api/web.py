"""The web client's pages and the interactive API documentation.

Every client path answers the same HTML shell; its script routes by `location.pathname` and
talks only to the JSON API. Paths that are not pages stay JSON 404s.
"""
import re

from flask import Blueprint, current_app

from ..errors import not_found

bp = Blueprint("web", __name__)

USERNAME = re.compile(r"[A-Za-z0-9_]{3,30}")  # as in schemas.USERNAME: no page for a name no user can have

# Both pages load their scripts and style sheets from files under /static and talk to this
# origin only. Swagger UI needs no 'unsafe-inline' either: React sets its inline styles through
# the CSSOM, which CSP does not govern (tests/e2e/test_api_docs.py fails on any violation).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def static_page(name: str, policy: str):
    """A static HTML file with its own Content-Security-Policy, revalidated on every load."""
    response = current_app.send_static_file(name)
    response.headers["Content-Security-Policy"] = policy
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/")
@bp.get("/explore")
def client_page():
    """The web client (home feed or sign-in form; explore)."""
    return static_page("web/index.html", PAGE_CSP)


@bp.get("/u/<username>")
def profile_page(username):
    """The web client on a user's profile; the script asks the API whether the user exists."""
    if not USERNAME.fullmatch(username):
        raise not_found("Page")
    return static_page("web/index.html", PAGE_CSP)


@bp.get("/api/docs")
def api_docs():
    """Swagger UI (vendored) over /api/openapi.json, with "try it" against this deployment."""
    return static_page("docs/index.html", PAGE_CSP)
