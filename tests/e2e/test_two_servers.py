"""End to end, two app servers: two gunicorn masters (3 workers each, different ports) share
one cache Redis, one auth Redis (real redis-servers started here, so neither master starts its
own) and one embedded store (one DATA_DIR).

Every freshness promise of API.md is checked with the writes sent to server A and the reads
to server B (the checks of test_freshness.py, run through `ServerPair`), then a recorded
history of profile edits and reads (traffic.Traffic) in both directions, then auth and stats
across the servers: a logout on one server is honoured by the other, and the cache stats of
either server count the workers of both.
"""
import secrets
import time

import pytest

from feedapp.infra.embedded_redis import auth_server, cache_server

from .deployment import Deployment
from .support import CHECKED, fresh, register_and_login
from .test_freshness import (  # noqa: F401 - pytest collects the imported tests and fixture here
    test_deleted_post_is_gone_from_every_listing_at_once,
    test_follow_and_unfollow_show_in_the_next_feed_read_with_exact_counts,
    test_like_and_unlike_are_exact_on_the_next_read_anywhere,
    test_new_post_heads_the_timeline_and_every_followers_feed_at_once,
    test_profile_edit_is_visible_everywhere_at_once,
    world,
)
from .traffic import Traffic

pytestmark = pytest.mark.slow

WORKERS = 3  # per server


class ServerPair:
    """Two app servers as the freshness checks see one deployment: reads (`url`, `workers`)
    go to `reader`, writes (support.writes_to) to `writer`."""

    def __init__(self, writer, reader):
        self.writer = writer
        self.reader = reader
        self.workers = reader.workers

    def url(self, path: str) -> str:
        return self.reader.url(path)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(server A, server B), sharing the Redis servers and the store started for them."""
    root = tmp_path_factory.mktemp("two_servers")
    with cache_server(root / "redis-cache", "64mb") as cache, auth_server(root / "redis-auth") as auth:
        shared = {"REDIS_URL": cache.url, "AUTH_REDIS_URL": auth.url, "JWT_SECRET": secrets.token_urlsafe(48)}
        data_dir = root / "var"  # one DATA_DIR: both servers open the same store under it

        def server(name):
            env = {**shared, "PROMETHEUS_MULTIPROC_DIR": str(root / f"prometheus-{name}")}
            return Deployment(data_dir, workers=WORKERS, env=env, name=f"server-{name}")

        with server("a") as a, server("b") as b:
            yield a, b
    print(f"\ntwo servers: {CHECKED['answers']} answers checked right after writes")


@pytest.fixture(scope="module")
def dep(servers):
    """Writes on server A, reads on server B (what the imported freshness tests use)."""
    return ServerPair(*servers)


def test_neither_server_started_its_own_redis(servers):
    data_dir = servers[0].data_dir
    assert not (data_dir / "redis").exists() and not (data_dir / "redis-auth").exists()
    ports = {s.port for s in servers}
    assert len(ports) == 2


@pytest.mark.parametrize("direction", ["a_to_b", "b_to_a"])
def test_no_read_on_one_server_is_older_than_a_write_returned_by_the_other(servers, direction):
    writer, reader = servers if direction == "a_to_b" else servers[::-1]
    pair = ServerPair(writer, reader)
    user_id, headers = register_and_login(pair, f"hist_{direction}", display_name="initial")
    others = [f"/api/users/{register_and_login(pair, f'other{n}_{direction}')[0]}" for n in range(3)]
    with Traffic(pair, user_id, headers, other_paths=others, readers=6, write_pause=0.03,
                 max_seconds=60) as traffic:
        deadline = time.monotonic() + 50
        while len(traffic.writes) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        traffic.stop_writing()
        time.sleep(0.3)  # readers go on after the last write
    staleness = traffic.staleness()
    tiers = traffic.tiers()
    workers = {r["worker"] for r in traffic.reads}
    print(f"\n{direction}: {len(traffic.writes)} writes, {len(traffic.reads)} reads, tiers {tiers}, {staleness}")
    assert not traffic.write_errors, traffic.write_errors[:5]
    assert len(traffic.writes) >= 40
    assert not traffic.server_errors(), traffic.server_errors()[:5]
    assert len(workers) == WORKERS, f"reads reached only workers {workers}"
    assert tiers.get("L1", 0) > 0, f"L1 never served a read: nothing was tested ({tiers})"
    assert staleness == {"stale_reads": 0, "largest_staleness_ms": 0.0}


def test_a_logout_on_one_server_is_honoured_by_the_other(servers):
    a, b = servers
    _, headers = register_and_login(a, "leaver_two")
    assert fresh("GET", b.url("/api/me"), headers=headers).status_code == 200
    assert fresh("POST", a.url("/api/auth/logout"), headers=headers).status_code == 200
    for _ in range(2 * WORKERS):  # fresh connections: every worker of server B, most likely
        response = fresh("GET", b.url("/api/me"), headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_cache_stats_count_the_workers_of_both_servers(servers):
    deadline = time.monotonic() + 20
    seen = {}
    while time.monotonic() < deadline:
        seen = {s.port: fresh("GET", s.url("/api/cache/stats")).json()["workers"] for s in servers}
        if set(seen.values()) == {2 * WORKERS}:
            return
        time.sleep(0.5)
    pytest.fail(f"workers counted per server: {seen}, expected {2 * WORKERS} on both")
