"""Faults under steady load, 4 gunicorn workers: the cache Redis killed, restarted,
paused; the subscriber connections killed; a worker killed; the store offline.

Each test owns its cache redis-server (so it can kill, pause and restart it) and a separate
auth redis-server (sessions must outlive the cache server, see README "Security"), runs
`Traffic` (one writer editing a watched profile, readers on fresh connections), applies the
fault, and checks the promises: no read answers 5xx, no read that started after a write
returned shows older data (beyond the listeners' detection window, measured), no request waits
on a dead Redis longer than the socket timeout, and the caches take over again afterwards.
Figures are printed (`-s` shows them) and kept in `faults.json` under the test's tmp dir.
"""
import json
import os
import signal
import time

import pytest

from feedapp.infra.embedded_redis import auth_server, cache_server

from .deployment import Deployment
from .support import cache_stats, fresh, register_and_login
from .traffic import Traffic

pytestmark = pytest.mark.slow

WORKERS = 4
SOCKET_TIMEOUT_MS = 1000  # feedapp's Redis socket timeout (REDIS_TIMEOUT default)
DETECTION_TARGET_MS = 1000  # the longest a listener may take to notice a dead/paused Redis


@pytest.fixture
def setup(tmp_path, request):
    # persist: the cache server keeps an append-only file, so a restart brings back values that
    # writes during the outage could not invalidate (the outbox must remove them).
    persist = getattr(request, "param", False)
    cache_redis = cache_server(tmp_path / "cache-redis", persist=persist).start()
    auth_redis = auth_server(tmp_path / "auth-redis").start()
    env = {"REDIS_URL": cache_redis.url, "AUTH_REDIS_URL": auth_redis.url, "SEED_ON_START": "1",
           "SEED_USERS": "40", "SEED_POSTS": "120", "LOG_LEVEL": "WARNING"}
    dep = Deployment(tmp_path / "var", workers=WORKERS, env=env)
    try:
        dep.start()
        _, headers = register_and_login(dep, "watched", display_name="initial")
        watched_id = fresh("GET", dep.url("/api/me"), headers=headers).json()["id"]
        posts = fresh("GET", dep.url("/api/posts?page_size=10")).json()["items"]
        others = [f"/api/users/{p['author']['id']}" for p in posts] + [f"/api/posts/{p['id']}" for p in posts]
        yield dep, cache_redis, watched_id, headers, others, tmp_path
    finally:
        dep.stop()
        for server in (cache_redis, auth_redis):
            if server.process is not None and server.process.poll() is None:
                os.kill(server.process.pid, signal.SIGCONT)
            server.stop()


def record(tmp_path, name, figures):
    path = tmp_path / "faults.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = figures
    path.write_text(json.dumps(data, indent=2))
    print(f"\n{name}: {json.dumps(figures)}")


def base_figures(traffic) -> dict:
    return {**traffic.staleness(), "5xx": traffic.count_5xx(),
            "connection_errors": traffic.count_connection_errors(), "write_errors": len(traffic.write_errors)}


def check_common(traffic, figures):
    assert not traffic.server_errors(), traffic.server_errors()[:5]
    assert figures["stale_reads"] == 0, figures
    assert len(traffic.writes) >= 10, traffic.write_errors[:5]


def kill(server):
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()


def test_cache_redis_killed_mid_load(setup):
    dep, cache_redis, watched_id, headers, others, tmp_path = setup
    with Traffic(dep, watched_id, headers, others) as traffic:
        time.sleep(2)
        fault = traffic.mark()
        kill(cache_redis)
        time.sleep(4)
    figures = {**base_figures(traffic),
               "writes_during_fault": sum(w["start"] > fault for w in traffic.writes),
               "latency_during_fault_ms": traffic.latency_ms(since=fault), "tiers_during_fault": traffic.tiers(since=fault)}
    record(tmp_path, "redis_killed", figures)
    check_common(traffic, figures)
    assert not traffic.write_errors, traffic.write_errors[:5]  # writes still succeed in the store
    # Each write of the outage records its evictions in the outbox and waits one recovery
    # lease (0.5 s) for every worker to see them: a steady trickle, not a stall.
    assert figures["writes_during_fault"] >= 5
    assert figures["latency_during_fault_ms"]["max"] < SOCKET_TIMEOUT_MS + 500  # the breaker bounds every wait


@pytest.mark.parametrize("setup", [False, True], ids=["empty-on-restart", "append-only-file"], indirect=True)
def test_cache_redis_restarted(setup):
    dep, cache_redis, watched_id, headers, others, tmp_path = setup
    with Traffic(dep, watched_id, headers, others) as traffic:
        time.sleep(2)
        fault = traffic.mark()
        kill(cache_redis)
        time.sleep(2)
        # The last writes were made during the outage: no later write hides a stale L2 value.
        traffic.stop_writing()
        restarted = traffic.mark()
        cache_redis.start()
        time.sleep(5)
    recovered = traffic.recovered_after(restarted)
    stats = cache_stats(dep)
    figures = {**base_figures(traffic),
               "time_to_recover_s": recovered, "latency_during_fault_ms": traffic.latency_ms(since=fault, until=restarted),
               "latency_after_restart_ms": traffic.latency_ms(since=restarted),
               "tiers_after_restart": traffic.tiers(since=restarted),
               "listeners_live": sum(w["listener_live"] for w in stats["per_worker"])}
    record(tmp_path, f"redis_restarted (persist={cache_redis.persist})", figures)
    check_common(traffic, figures)
    assert not traffic.write_errors, traffic.write_errors[:5]
    assert recovered is not None and recovered < 5, figures  # listeners resubscribed, hit ratio came back
    assert figures["listeners_live"] == WORKERS
    assert traffic.tiers(since=restarted + recovered).get("L1", 0) > 0


def test_cache_redis_paused_for_five_seconds(setup):
    dep, cache_redis, watched_id, headers, others, tmp_path = setup
    with Traffic(dep, watched_id, headers, others) as traffic:
        time.sleep(2)
        fault = traffic.mark()
        os.kill(cache_redis.process.pid, signal.SIGSTOP)
        time.sleep(5)
        resumed = traffic.mark()
        os.kill(cache_redis.process.pid, signal.SIGCONT)
        time.sleep(4)
    figures = {**base_figures(traffic),
               "latency_during_pause_ms": traffic.latency_ms(since=fault, until=resumed),
               "latency_after_ms": traffic.latency_ms(since=resumed),
               "time_to_recover_s": traffic.recovered_after(resumed),
               "writes_during_pause": sum(fault < w["start"] < resumed for w in traffic.writes)}
    record(tmp_path, "redis_paused", figures)
    check_common(traffic, figures)
    assert not traffic.write_errors, traffic.write_errors[:5]
    assert figures["writes_during_pause"] >= 1
    # Nothing hangs: a read waits at most one socket timeout (then the breaker skips Redis).
    assert figures["latency_during_pause_ms"]["max"] < SOCKET_TIMEOUT_MS + 700, figures
    assert figures["time_to_recover_s"] is not None


def test_subscriber_connections_killed_under_load(setup):
    dep, cache_redis, watched_id, headers, others, tmp_path = setup
    admin = __import__("redis").Redis.from_url(cache_redis.url)
    with Traffic(dep, watched_id, headers, others) as traffic:
        time.sleep(2)
        fault = traffic.mark()
        for _ in range(3):
            admin.client_kill_filter(_type="pubsub")
            time.sleep(1)
        time.sleep(2)
    figures = {**base_figures(traffic),
               "latency_after_kill_ms": traffic.latency_ms(since=fault),
               "tiers_after_kill": traffic.tiers(since=fault)}
    record(tmp_path, "subscribers_killed", figures)
    check_common(traffic, figures)
    assert not traffic.write_errors, traffic.write_errors[:5]
    assert figures["tiers_after_kill"].get("L1", 0) > 0  # listeners came back and L1 serves again


def test_a_worker_killed_is_replaced_with_its_own_listener_and_no_write_is_lost(setup):
    dep, cache_redis, watched_id, headers, others, tmp_path = setup
    with Traffic(dep, watched_id, headers, others) as traffic:
        time.sleep(2)
        victim = int(fresh("GET", dep.url("/healthz")).headers["X-Worker"])
        os.kill(victim, signal.SIGKILL)
        time.sleep(5)
    time.sleep(2)  # heartbeats of the new worker
    stats = cache_stats(dep)
    pids = {int(w["worker"].rsplit(":", 1)[1]) for w in stats["per_worker"]}
    final = fresh("GET", dep.url(f"/api/users/{watched_id}")).json()["display_name"]
    figures = {**base_figures(traffic), "workers": stats["workers"],
               "acknowledged_writes": len(traffic.writes)}
    record(tmp_path, "worker_killed", figures)
    assert victim not in pids and len(pids) == WORKERS
    assert all(w["listener_live"] for w in stats["per_worker"])
    assert final == f"v{traffic.writes[-1]['k']}"  # the last acknowledged write is what everyone reads
    # Requests the killed worker was answering fail with a connection error, not a 5xx.
    assert figures["5xx"] == 0, traffic.server_errors()[:5]
    assert figures["stale_reads"] == 0


def test_store_offline_serves_cached_reads_and_refuses_writes_cleanly(setup):
    dep, cache_redis, watched_id, headers, others, tmp_path = setup
    store_dir = tmp_path / "var" / "store"
    profile = dep.url(f"/api/users/{watched_id}")
    for _ in range(8):  # cached on every worker and in L2
        assert fresh("GET", profile).status_code == 200
    before = fresh("GET", profile).json()
    posts_before = fresh("GET", dep.url(f"/api/users/{watched_id}/posts")).json()["items"]
    (store_dir / "OFFLINE").write_text("maintenance")
    try:
        cached = [fresh("GET", profile) for _ in range(20)]
        started = time.perf_counter()
        uncached = fresh("GET", dep.url("/api/users/000000000000000000000000"))
        write = fresh("POST", dep.url("/api/posts"), headers=headers, json={"content": "while offline"})
        edit = fresh("PATCH", dep.url("/api/me"), headers=headers, json={"display_name": "offline edit"})
        refused_in = time.perf_counter() - started
    finally:
        (store_dir / "OFFLINE").unlink()
    figures = {"cached_reads_ok": sum(r.status_code == 200 for r in cached),
               "uncached_status": uncached.status_code, "write_status": write.status_code,
               "edit_status": edit.status_code, "refused_within_s": round(refused_in, 3)}
    record(tmp_path, "store_offline", figures)
    assert all(r.status_code == 200 and r.json() == before for r in cached)
    for response in (uncached, write, edit):
        assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
    assert refused_in < 3
    # Nothing was half applied: no post, no counter bump, no cached edit.
    assert fresh("GET", profile).json() == before
    assert fresh("GET", dep.url(f"/api/users/{watched_id}/posts")).json()["items"] == posts_before
