"""Soak: several minutes of mixed traffic as fast as the box allows, 4 workers.

Readers and writers touch many distinct keys (profiles, timelines, feeds, posts, explore with
varied filters: each filter set has its own cache key) so that anything kept per key (locks,
single-flight entries, generations) would show as growth. Checked at the end: zero 5xx,
every worker's RSS flat after warm-up, Redis memory bounded, every Redis key has a TTL, no L1
above its maxsize. SOAK_SECONDS sets the length (default 180); the figures are printed and
kept in soak.json under the test's tmp dir.
"""
import json
import os
import random
import threading
import time
from collections import Counter

import pytest
import redis

from feedapp.infra.embedded_redis import auth_server, cache_server

from .deployment import Deployment
from .support import cache_stats, fresh, register_and_login

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
WARM_UP = min(30.0, SECONDS / 4)
WORKERS = 4
READERS = 8
WRITERS = 2


def worker_rss_mb(master_pid) -> dict:
    """{pid: resident MB} of the gunicorn master's children."""
    rss = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            if ppid != master_pid:
                continue
            with open(f"/proc/{entry}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss[int(entry)] = int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return rss


def keys_without_ttl(client) -> list:
    return [key for key in client.scan_iter(count=1000) if client.ttl(key) == -1]


class Load:
    def __init__(self, dep, users, posts, writers):
        self.dep, self.users, self.posts, self.writers = dep, users, posts, writers
        self.statuses = Counter()
        self.errors = []
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def _record(self, response):
        with self._lock:
            self.statuses[response.status_code // 100 * 100] += 1
            if response.status_code >= 500:
                self.errors.append(f"{response.request.method} {response.url}: {response.status_code} {response.text[:200]}")

    def read(self, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            user = self.users[min(int(rng.paretovariate(1.1)) - 1, len(self.users) - 1)]  # a few users are hot
            choice = rng.random()
            if choice < 0.35:
                path = f"/api/users/{user}"
            elif choice < 0.55:
                path = f"/api/users/{user}/posts"
            elif choice < 0.7:
                path = f"/api/users/{user}/feed"
            elif choice < 0.85:
                path = f"/api/posts/{rng.choice(self.posts)}"
            else:
                path = f"/api/posts?q={rng.choice('abcdefghij')}{rng.randrange(100)}&page={rng.randrange(1, 4)}"
            self._record(fresh("GET", self.dep.url(path)))

    def write(self, seed, headers):
        rng = random.Random(seed)
        n = 0
        while not self.stop.is_set():
            n += 1
            choice = rng.random()
            if choice < 0.4:
                response = fresh("POST", self.dep.url("/api/posts"), headers=headers, json={"content": f"soak {seed} {n}"})
                if response.status_code == 201:
                    self.posts.append(response.json()["id"])
            elif choice < 0.6:
                response = fresh("POST", self.dep.url(f"/api/posts/{rng.choice(self.posts)}/like"), headers=headers)
            elif choice < 0.8:
                method = "POST" if rng.random() < 0.6 else "DELETE"
                response = fresh(method, self.dep.url(f"/api/users/{rng.choice(self.users)}/follow"), headers=headers)
            else:
                response = fresh("PATCH", self.dep.url("/api/me"), headers=headers, json={"bio": f"bio {n}"})
            self._record(response)
            time.sleep(0.02)


def test_soak(tmp_path):
    cache_redis = cache_server(tmp_path / "cache-redis", persist=False).start()
    auth_redis = auth_server(tmp_path / "auth-redis").start()
    env = {"REDIS_URL": cache_redis.url, "AUTH_REDIS_URL": auth_redis.url, "SEED_ON_START": "1",
           "SEED_USERS": "300", "SEED_POSTS": "3000", "LOG_LEVEL": "WARNING", "L1_MAXSIZE": "500"}
    try:
        with Deployment(tmp_path / "var", workers=WORKERS, env=env) as dep:
            run_soak(dep, cache_redis, tmp_path)
    finally:
        cache_redis.stop()
        auth_redis.stop()


def run_soak(dep, cache_redis, tmp_path):
    page = fresh("GET", dep.url("/api/posts?page_size=100")).json()["items"]
    posts = [p["id"] for p in page]
    users = list(dict.fromkeys(p["author"]["id"] for p in page))
    writer_headers = [register_and_login(dep, f"soak_writer_{i}")[1] for i in range(WRITERS)]
    load = Load(dep, users, posts, writer_headers)
    threads = [threading.Thread(target=load.read, args=(i,), daemon=True) for i in range(READERS)]
    threads += [threading.Thread(target=load.write, args=(100 + i, h), daemon=True) for i, h in enumerate(writer_headers)]
    client = redis.Redis.from_url(cache_redis.url)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(WARM_UP)
    at_warm = {"rss": worker_rss_mb(dep.process.pid), "redis": client.info("memory")["used_memory"],
               "requests": sum(load.statuses.values())}
    samples = []
    while time.monotonic() - started < SECONDS:
        time.sleep(min(15, max(0.1, SECONDS - (time.monotonic() - started))))
        samples.append({"t": round(time.monotonic() - started), "rss": worker_rss_mb(dep.process.pid),
                        "redis_mb": round(client.info("memory")["used_memory"] / 2**20, 2)})
    load.stop.set()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    time.sleep(2)  # counters flushed
    stats = cache_stats(dep)
    at_end = {"rss": worker_rss_mb(dep.process.pid), "redis": client.info("memory")["used_memory"]}
    untimed = keys_without_ttl(client)
    figures = {
        "seconds": round(elapsed), "requests": sum(load.statuses.values()),
        "requests_per_s": round(sum(load.statuses.values()) / elapsed, 1), "statuses": dict(load.statuses),
        "rss_mb_after_warm_up": {pid: round(mb, 1) for pid, mb in at_warm["rss"].items()},
        "rss_mb_at_end": {pid: round(mb, 1) for pid, mb in at_end["rss"].items()},
        "redis_mb_after_warm_up": round(at_warm["redis"] / 2**20, 2), "redis_mb_at_end": round(at_end["redis"] / 2**20, 2),
        "l1_sizes": [w["l1_size"] for w in stats["per_worker"]], "l1_maxsize": [w["l1_maxsize"] for w in stats["per_worker"]],
        "keys_without_ttl": [k.decode(errors="replace") for k in untimed[:10]], "hit_ratio": stats["hit_ratio"],
        "samples": samples,
    }
    (tmp_path / "soak.json").write_text(json.dumps(figures, indent=2))
    print(f"\nsoak: {json.dumps({k: v for k, v in figures.items() if k != 'samples'})}")

    assert not load.errors, load.errors[:5]
    assert figures["requests"] > 1000
    assert set(at_end["rss"]) == set(at_warm["rss"]), "a worker was replaced during the soak"
    for pid, warm in at_warm["rss"].items():
        # Flat: allocator noise only, no growth with the number of keys touched.
        assert at_end["rss"][pid] <= warm * 1.15 + 10, (pid, warm, at_end["rss"][pid])
    assert untimed == []  # every key of the cache Redis expires
    assert at_end["redis"] <= max(at_warm["redis"] * 2, at_warm["redis"] + 32 * 2**20)
    assert all(size <= maxsize for size, maxsize in zip(figures["l1_sizes"], figures["l1_maxsize"]))
