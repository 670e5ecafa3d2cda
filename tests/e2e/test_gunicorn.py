"""End to end: gunicorn with 3 workers on the embedded defaults (feedapp/infra/docstore + redis-server)."""
import gzip
import http.client
import json

import brotli
import requests


def fresh(method, url, **kwargs):
    """One request on a new connection, so the kernel may hand it to any worker."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return requests.request(method, url, headers=headers, timeout=10, **kwargs)


def register_and_login(dep, username):
    body = {"username": username, "email": f"{username}@example.com", "password": "password123"}
    created = fresh("POST", dep.url("/api/auth/register"), json=body)
    assert created.status_code == 201, created.text
    tokens = fresh("POST", dep.url("/api/auth/login"), json={"username": username, "password": "password123"})
    assert tokens.status_code == 200, tokens.text
    return created.json()["user"]["id"], {"Authorization": f"Bearer {tokens.json()['access_token']}"}


def workers_answering(dep, method, path, expected_status, headers=None, attempts=80, json=None):
    """Send `attempts` fresh requests; return the set of workers, asserting every status."""
    workers = set()
    for _ in range(attempts):
        response = fresh(method, dep.url(path), headers=headers or {}, json=json)
        assert response.status_code == expected_status, (response.status_code, response.text)
        workers.add(response.headers["X-Worker"])
    return workers


def test_register_follow_post_feed_across_workers(deployment):
    alice_id, alice = register_and_login(deployment, "alice_e2e")
    bob_id, bob = register_and_login(deployment, "bob_e2e")
    assert fresh("POST", deployment.url(f"/api/users/{bob_id}/follow"), headers=alice).json() == {"following": True}
    post = fresh("POST", deployment.url("/api/posts"), json={"content": "hello from bob"}, headers=bob)
    assert post.status_code == 201
    seen = set()
    for _ in range(40):
        feed = fresh("GET", deployment.url("/api/feed"), headers=alice)
        assert feed.status_code == 200
        assert feed.json()["items"][0]["id"] == post.json()["id"]
        seen.add(feed.headers["X-Worker"])
    assert len(seen) > 1  # the promise held on more than one worker
    profile = fresh("GET", deployment.url(f"/api/users/{bob_id}")).json()
    assert (profile["followers_count"], profile["posts_count"]) == (1, 1)


def test_logout_revokes_on_every_worker(deployment):
    _, carol = register_and_login(deployment, "carol_e2e")
    before = workers_answering(deployment, "GET", "/api/me", 200, carol)
    assert fresh("POST", deployment.url("/api/auth/logout"), headers=carol).status_code == 200
    after = workers_answering(deployment, "GET", "/api/me", 401, carol)
    assert len(before | after) == deployment.workers, "every worker must have answered"


def test_the_21st_login_ends_the_oldest_sessions_tokens_on_every_worker(deployment):
    body = {"username": "erin_e2e", "email": "erin_e2e@example.com", "password": "password123"}
    assert fresh("POST", deployment.url("/api/auth/register"), json=body).status_code == 201
    login = {"username": body["username"], "password": body["password"]}
    logins = [fresh("POST", deployment.url("/api/auth/login"), json=login) for _ in range(21)]
    assert {r.status_code for r in logins} == {200}, [r.text for r in logins]
    tokens = [r.json() for r in logins]
    bearer = [{"Authorization": f"Bearer {t['access_token']}"} for t in tokens]
    answered = [workers_answering(deployment, "GET", "/api/me", status, bearer[i])
                for i, status in ((0, 401), (1, 200), (20, 200))]
    answered.append(workers_answering(deployment, "POST", "/api/auth/refresh", 401, attempts=40,
                                      json={"refresh_token": tokens[0]["refresh_token"]}))
    assert all(len(workers) == deployment.workers for workers in answered), "every worker must answer"
    assert fresh("POST", deployment.url("/api/auth/refresh"),
                 json={"refresh_token": tokens[1]["refresh_token"]}).status_code == 200


def test_tokens_work_on_every_worker(deployment):
    """One shared signing secret: a token from one worker is valid on all."""
    _, dave = register_and_login(deployment, "dave_e2e")
    assert len(workers_answering(deployment, "GET", "/api/me", 200, dave)) == deployment.workers


def raw_get(dep, path, headers) -> tuple:
    """(status, headers, body bytes as sent: nothing decoded) of one GET on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", dep.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close", **headers})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_a_compressed_100_post_feed_page_decodes_to_the_same_json_and_its_etag_earns_304(deployment):
    author_id, author = register_and_login(deployment, "frank_e2e")
    reader_id, reader = register_and_login(deployment, "grace_e2e")
    assert fresh("POST", deployment.url(f"/api/users/{author_id}/follow"), headers=reader).status_code == 200
    for n in range(100):
        body = {"content": f"post {n}: a morning of caches, feeds and latency"}
        assert fresh("POST", deployment.url("/api/posts"), json=body, headers=author).status_code == 201
    path = f"/api/users/{reader_id}/feed?limit=100"
    status, headers, plain = raw_get(deployment, path, {"Accept-Encoding": "identity"})
    assert status == 200 and "Content-Encoding" not in headers and len(json.loads(plain)["items"]) == 100
    tags = {headers["ETag"]}
    for coding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        status, headers, body = raw_get(deployment, path, {"Accept-Encoding": coding})
        assert (status, headers["Content-Encoding"]) == (200, coding)
        assert "Accept-Encoding" in headers["Vary"] and len(body) < len(plain) / 3
        assert json.loads(decode(body)) == json.loads(plain)
        tags.add(headers["ETag"])
    assert len(tags) == 2  # the plain tag, and the same tag weak for both compressed answers
    for tag in tags:
        for coding in ("br", "gzip", "identity"):
            asked = {"If-None-Match": tag, "Accept-Encoding": coding}
            assert len(workers_answering(deployment, "GET", path, 304, asked)) == deployment.workers
