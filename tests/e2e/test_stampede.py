"""End to end, 4 gunicorn workers: a stampede on one cold key of any family costs one store read.

200 requests, each on its own connection (opened beforehand, so the kernel has already handed
it to one of the workers), are released together by a barrier and ask for one key that no one
has read yet. Single-flight within a worker and the L2 lease across workers must turn
them into exactly one MongoDB (L3) load of that key, counted by GET /api/cache/stats
(`families.<family>["l3.reads"]`, summed over workers; workers flush once a second).
"""
import http.client
import threading
import time
from collections import Counter

import pytest

from .deployment import Deployment
from .support import cache_stats, fresh, register_and_login

WORKERS = 4
REQUESTS = 200
FLUSH_WAIT = 2.5  # every worker flushes its counters to Redis once a second


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    with Deployment(tmp_path_factory.mktemp("stampede") / "var", workers=WORKERS) as running:
        yield running


def l3_reads(dep, family) -> int:
    time.sleep(FLUSH_WAIT)
    return cache_stats(dep)["families"].get(family, {}).get("l3.reads", 0)


def stampede(dep, path):
    """REQUESTS concurrent GETs of path, released together; [(status, body, X-Cache, X-Worker)]."""
    barrier = threading.Barrier(REQUESTS, timeout=30)
    results = [None] * REQUESTS

    def one(i):
        conn = http.client.HTTPConnection("127.0.0.1", dep.port, timeout=30)
        try:
            conn.connect()
            barrier.wait()
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            results[i] = (response.status, response.read(), response.getheader("X-Cache"),
                          response.getheader("X-Worker"))
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as err:
            results[i] = (None, repr(err).encode(), None, None)
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None for r in results), "some requests never finished"
    return results


def check_stampede(dep, path, family):
    before = l3_reads(dep, family)
    results = stampede(dep, path)
    after = l3_reads(dep, family)

    statuses = Counter(status for status, *_ in results)
    bodies = Counter(body for _, body, *_ in results)
    tiers = Counter(tier for *_, tier, _ in results)
    workers = Counter(worker for *_, worker in results)
    print(f"\nstampede on {path}: {after - before} store read(s) of family {family!r}; "
          f"X-Cache {dict(tiers)}; per worker {dict(workers)}")
    assert statuses == {200: REQUESTS}, statuses
    assert len(bodies) == 1, f"{len(bodies)} different bodies: {list(bodies)[:3]}"
    assert len(workers) == WORKERS, f"only workers {dict(workers)} answered"
    assert tiers["L3"] >= 1, "the key was not cold"
    assert after - before == 1, f"{after - before} store reads of the cold key (at most one allowed)"
    return results


def test_cold_profile_stampede_costs_one_store_read(dep):
    user_id, _ = register_and_login(dep, "cold_profile")  # registering never reads the profile key
    results = check_stampede(dep, f"/api/users/{user_id}", "profile")
    assert '"username":"cold_profile"' in results[0][1].decode()


def test_cold_post_stampede_costs_one_store_read(dep):
    _, author = register_and_login(dep, "cold_author")
    created = fresh("POST", dep.url("/api/posts"), json={"content": "a cold post"}, headers=author)
    assert created.status_code == 201, created.text
    results = check_stampede(dep, f"/api/posts/{created.json()['id']}", "post")
    assert '"content":"a cold post"' in results[0][1].decode()


def test_cold_timeline_stampede_costs_one_store_read(dep):
    author_id, author = register_and_login(dep, "cold_timeline")
    for i in range(3):
        assert fresh("POST", dep.url("/api/posts"), json={"content": f"timeline {i}"}, headers=author).status_code == 201
    fresh("GET", dep.url(f"/api/users/{author_id}"))  # the profile is not what this test is about
    # A post writes through to cached timelines only: this one was never read, so it is cold.
    results = check_stampede(dep, f"/api/users/{author_id}/posts", "timeline")
    assert b'"content":"timeline 2"' in results[0][1]


def test_cold_explore_page_stampede_costs_one_store_read(dep):
    _, author = register_and_login(dep, "cold_explorer")
    assert fresh("POST", dep.url("/api/posts"), json={"content": "explore me, stampede"}, headers=author).status_code == 201
    fresh("GET", dep.url("/api/posts?q=nothing-like-this"))  # the explore generation is cached
    results = check_stampede(dep, "/api/posts?q=explore+me&page_size=7", "explore")
    assert b'"content":"explore me, stampede"' in results[0][1]
