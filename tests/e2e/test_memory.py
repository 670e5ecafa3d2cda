"""End to end, 3 gunicorn workers: anonymous clients asking for 30,000 distinct feed and
timeline pages (every `limit` 1–100 at every `before` cursor of a 150-post listing) cannot
grow a worker's memory past what L1_MAX_BYTES allows. Composed pages are cached per
(listing, limit, before), so without a byte budget each worker would keep ~10,000 of them."""
import http.client
from concurrent.futures import ThreadPoolExecutor

import pytest

from .deployment import Deployment
from .support import cache_stats, fresh, register_and_login

pytestmark = pytest.mark.slow

WORKERS = 3
POSTS = 150  # under LIST_CAP: every page is cut from the cached list and kept
LIMITS = range(1, 101)
L1_MAX_BYTES = 8 * 1024 * 1024
# A worker's RSS grows by more than its L1 holds: decoded pages are Python objects, and a
# worker allocates anyway under load (buffers, allocator slack from pages built and dropped).
# Measured on this test: about +30 MiB with this budget, +55 MiB at 32 MiB, and +175 MiB per
# worker with no byte budget (10,000 pages each): the bound keeps room for noise only.
RSS_BOUND = 6 * L1_MAX_BYTES


def rss(pid) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    env = {"L1_MAX_BYTES": str(L1_MAX_BYTES), "WARM_ON_START": "0", "LOG_LEVEL": "WARNING"}
    with Deployment(tmp_path_factory.mktemp("memory") / "var", workers=WORKERS, env=env) as running:
        yield running


def listing(dep) -> tuple:
    """(author id, reader id, every `before` of the listing: "" for its head, then the cursor
    after each post but the last): the reader follows the author."""
    author, author_headers = register_and_login(dep, "prolific")
    reader, reader_headers = register_and_login(dep, "reader")
    assert fresh("POST", dep.url(f"/api/users/{author}/follow"), headers=reader_headers).status_code == 200
    for n in range(POSTS):
        body = {"content": f"post {n}: " + "a fairly ordinary sentence about caches. " * 5}
        assert fresh("POST", dep.url("/api/posts"), json=body, headers=author_headers).status_code == 201
    cursors, cursor = [""], None
    while len(cursors) < POSTS:
        page = fresh("GET", dep.url(f"/api/users/{author}/posts?limit=50" + (f"&before={cursor}" if cursor else "")))
        items = page.json()["items"]
        for i in range(len(items)):  # the cursor after item i is the next page's `before`
            one = fresh("GET", dep.url(f"/api/users/{author}/posts?limit={i + 1}" + (f"&before={cursor}" if cursor else "")))
            cursors.append(f"&before={one.json()['next_cursor']}")
        cursor = page.json()["next_cursor"]
    return author, reader, cursors[:POSTS]


def get(dep, path) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", dep.port, timeout=60)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status, int(response.getheader("X-Worker"))
    finally:
        conn.close()


def test_30000_distinct_pages_grow_no_worker_past_the_byte_budget(dep):
    author, reader, cursors = listing(dep)
    paths = [f"/api/users/{user}/{kind}?limit={limit}{before}"
             for user, kind in ((author, "posts"), (reader, "feed")) for before in cursors for limit in LIMITS]
    assert len(set(paths)) == 30_000
    warm = paths[::50]  # every worker has served pages (and built its caches) before the baseline
    with ThreadPoolExecutor(max_workers=16) as pool:
        workers = {pid for status, pid in pool.map(lambda p: get(dep, p), warm * 2)}
        assert len(workers) == WORKERS
        before = {pid: rss(pid) for pid in workers}
        answers = list(pool.map(lambda p: get(dep, p), paths))
    after = {pid: rss(pid) for pid in workers}
    assert {status for status, _ in answers} == {200}
    growth = {pid: after[pid] - before[pid] for pid in workers}
    stats = cache_stats(dep)
    report = {pid: f"{growth[pid] / 2 ** 20:.1f} MiB" for pid in workers}
    print(f"\nworker RSS growth after {len(paths)} distinct pages: {report}; L1 encoded bytes per worker: "
          f"{[w['l1_bytes'] for w in stats['per_worker']]} (budget {L1_MAX_BYTES})")
    assert all(0 < w["l1_bytes"] <= L1_MAX_BYTES for w in stats["per_worker"])
    assert max(growth.values()) < RSS_BOUND, report
