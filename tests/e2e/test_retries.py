"""End to end, 4 gunicorn workers: a post sent again and again with one Idempotency-Key (a
mobile client retrying on a flaky network, its retries reaching different workers, some at
the same moment) is one post, one fan-out, one answer."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from .deployment import Deployment
from .support import fresh, register_and_login


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    with Deployment(tmp_path_factory.mktemp("retries") / "var", workers=4) as running:
        yield running


def test_concurrent_and_later_retries_of_one_post_are_one_post(dep):
    author_id, author = register_and_login(dep, "retrying_author")
    fan_id, fan = register_and_login(dep, "retrying_fan")
    assert fresh("POST", dep.url(f"/api/users/{author_id}/follow"), headers=fan).status_code == 200
    headers = {**author, "Idempotency-Key": "phone-7f3a"}
    body = {"content": "sent from a train"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: fresh("POST", dep.url("/api/posts"), json=body, headers=headers), range(8)))
    answers.append(fresh("POST", dep.url("/api/posts"), json=body, headers=headers))  # and once more, later
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.headers["X-Worker"] for a in answers}) > 1  # retries reached several workers
    post_id = answers[0].json()["id"]
    timeline = fresh("GET", dep.url(f"/api/users/{author_id}/posts")).json()["items"]
    assert [p["id"] for p in timeline] == [post_id]
    feed = fresh("GET", dep.url(f"/api/users/{fan_id}/feed")).json()["items"]
    assert [p["id"] for p in feed] == [post_id]
    assert fresh("GET", dep.url(f"/api/users/{author_id}")).json()["posts_count"] == 1
    other = fresh("POST", dep.url("/api/posts"), json={"content": "something else"}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_mismatch"
