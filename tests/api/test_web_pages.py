"""The web client's pages and /api/docs as Flask serves them: one HTML shell, and the docs
page, under a strict Content-Security-Policy, and JSON 404s for every other path."""
import re

import pytest

from .helpers import assert_error

PAGES = ["/", "/explore", "/u/demo1_00000", "/u/Some_User_42"]


def csp(response) -> dict:
    """The Content-Security-Policy as {directive: set of sources}."""
    directives = [part.split() for part in response.headers["Content-Security-Policy"].split(";") if part.strip()]
    return {d[0]: set(d[1:]) for d in directives}


def assert_no_inline_code(html: str):
    """Nothing the page's CSP would have to allow: scripts and styles come from files."""
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/static/' in tag, tag
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


@pytest.mark.parametrize("path", PAGES)
def test_client_pages_serve_one_html_shell_under_a_strict_csp(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.get_data() == client.get("/").get_data()
    policy = csp(response)
    assert policy["default-src"] == {"'none'"}
    assert policy["script-src"] == {"'self'"} and policy["style-src"] == {"'self'"}
    assert policy["connect-src"] == {"'self'"}
    assert policy["frame-ancestors"] == {"'none'"} and policy["base-uri"] == {"'none'"}
    assert response.headers["X-Frame-Options"] == "DENY"
    html = response.get_data(as_text=True)
    assert '<script type="module" src="/static/web/app.js"></script>' in html
    assert_no_inline_code(html)


@pytest.mark.parametrize("path", ["/nope", "/u", "/u/", "/u/ab", "/u/" + "a" * 31, "/u/bad-name", "/u/a%00b",
                                  "/u/alice/posts", "/explore/x", "/index.html", "/api/docs/x"])
def test_other_paths_stay_json_404(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/", "/explore", "/u/alice", "/api/docs"])
def test_pages_answer_other_methods_with_json_405(client, path):
    assert_error(client.post(path), 405, "method_not_allowed")


def test_every_module_of_the_client_is_served_as_javascript(client):
    seen, todo = set(), ["/static/web/app.js"]
    while todo:
        path = todo.pop()
        seen.add(path)
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype in ("text/javascript", "application/javascript"), (path, response.mimetype)
        for name in re.findall(r'^import .* from "\./([a-z]+\.js)";$', response.get_data(as_text=True), re.M):
            if f"/static/web/{name}" not in seen:
                todo.append(f"/static/web/{name}")
    assert len(seen) > 1  # app.js imports the rest


def test_api_docs_load_the_vendored_swagger_ui_under_the_same_strict_csp(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert csp(response) == csp(client.get("/"))  # no inline script or style, no eval
    assert response.headers["Cache-Control"] == "no-cache"
    html = response.get_data(as_text=True)
    assert_no_inline_code(html)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {"/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/vendor/swagger-ui/swagger-ui.css",
            "/static/docs/init.js"} <= set(assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    init = client.get("/static/docs/init.js").get_data(as_text=True)
    assert '"/api/openapi.json"' in init


def test_the_openapi_document_lets_swagger_send_bearer_tokens(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert spec["paths"]["/api/feed"]["get"]["security"] == [{"bearer": []}]
    assert all(op["tags"] for ops in spec["paths"].values() for op in ops.values())  # grouped in /api/docs
    page = spec["paths"]["/u/{username}"]["get"]
    assert "text/html" in page["responses"]["200"]["content"]
