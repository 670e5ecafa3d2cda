"""GET /api/cache/stats sums what every worker counted (4 workers under concurrent load)."""
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from .deployment import Deployment


def test_stats_equal_the_requests_sent_across_four_workers(tmp_path):
    env = {"SEED_ON_START": "1", "SEED_USERS": "60", "SEED_POSTS": "200"}
    with Deployment(tmp_path / "var", workers=4, env=env) as dep:
        time.sleep(2.5)  # let warm-up reads settle (they are lookups, not requests)
        before = requests.get(dep.url("/api/cache/stats"), timeout=5).json()["requests"]["total"]
        ids = [p["author"]["id"] for p in requests.get(dep.url("/api/posts?page_size=20"), timeout=5).json()["items"]]
        paths = [f"/api/users/{ids[i % len(ids)]}" for i in range(300)] + ["/api/posts?page_size=5"] * 50
        workers = set()

        def get(path):
            response = requests.get(dep.url(path), headers={"Connection": "close"}, timeout=10)
            assert response.status_code == 200
            return response.headers["X-Worker"]

        with ThreadPoolExecutor(16) as pool:
            workers.update(pool.map(get, paths))
        assert len(workers) == 4
        time.sleep(2.5)  # every worker flushes its counters once a second
        body = requests.get(dep.url("/api/cache/stats"), timeout=5).json()
        sent = len(paths) + 1  # and the explore read that found the ids
        assert body["requests"]["total"] - before == sent
        assert body["requests"]["l1"] + body["requests"]["l2"] + body["requests"]["l3"] == body["requests"]["total"]
        assert body["workers"] == 4
