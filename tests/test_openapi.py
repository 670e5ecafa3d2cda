from feedapp.http.openapi import openapi_path


def test_every_route_of_the_app_is_in_the_openapi_document(app, client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served - documented == set()  # no route undocumented
    assert documented - served == set()  # and nothing documented that is not served


def test_schemas_come_from_marshmallow(client):
    spec = client.get("/api/openapi.json").get_json()
    register = spec["components"]["schemas"]["Register"]
    assert set(register["required"]) == {"username", "email", "password"}
    profile = spec["components"]["schemas"]["Profile"]["properties"]
    assert "email" not in profile and "followers_count" in profile
    explore = spec["paths"]["/api/posts"]["get"]["parameters"]
    assert {"q", "author", "sort", "page", "page_size"} <= {p["name"] for p in explore}
