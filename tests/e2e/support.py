"""Client-side helpers for the multi-worker end-to-end tests (freshness, stampede, history).

Every request goes out on a new connection (`Connection: close`), so the kernel may hand it
to any gunicorn worker; `X-Worker` says which one answered.
"""
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

PASSWORD = "password123"
CHECKED = Counter()  # answers checked by on_every_worker, for the summary a test module prints


def fresh(method, url, **kwargs):
    """One request on a new connection."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return requests.request(method, url, headers=headers, timeout=kwargs.pop("timeout", 15), **kwargs)


def writes_to(dep):
    """Where a test sends its writes: `dep.writer` when dep is a pair of app servers (writes
    on one, reads on the other: test_two_servers.ServerPair), else dep itself."""
    return getattr(dep, "writer", dep)


def register_and_login(dep, username, display_name=None):
    """(user id, auth headers) of a new user (registered and logged in where writes go)."""
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    if display_name is not None:
        body["display_name"] = display_name
    dep = writes_to(dep)
    created = fresh("POST", dep.url("/api/auth/register"), json=body)
    assert created.status_code == 201, created.text
    tokens = fresh("POST", dep.url("/api/auth/login"), json={"username": username, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return created.json()["user"]["id"], {"Authorization": f"Bearer {tokens.json()['access_token']}"}


def cache_stats(dep) -> dict:
    response = fresh("GET", dep.url("/api/cache/stats"))
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class Probe:
    """A read to repeat on every worker; `check(response)` raises AssertionError when wrong."""
    path: str
    check: object
    headers: dict = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        self.name = self.name or self.path


def on_every_worker(dep, probes, *, written_at=None, per_worker=2, copies=4, max_rounds=40, pool=None):
    """Read every probe on fresh connections, `copies` at a time per probe and all probes
    together, until each probe has been answered by every worker at least `per_worker` times.

    Every single answer must pass its probe's check; a failure is reported with the worker that
    gave it and how long after `written_at` (a perf_counter time: the write's return) it came.
    Returns {probe name: Counter of workers}.
    """
    seen = {p.name: Counter() for p in probes}
    failures = []
    own_pool = pool is None
    pool = pool or ThreadPoolExecutor(max_workers=16)

    def one(probe):
        started = time.perf_counter()
        response = fresh("GET", dep.url(probe.path), headers=probe.headers)
        worker = response.headers.get("X-Worker")
        try:
            probe.check(response)
        except AssertionError as err:
            after = f"{(started - written_at) * 1000:.1f} ms after the write returned" if written_at else ""
            failures.append(f"{probe.name} on worker {worker} ({response.headers.get('X-Cache')}), "
                            f"request sent {after}: {err}")
        return probe.name, worker

    try:
        for _ in range(max_rounds):
            todo = [p for p in probes
                    if len(seen[p.name]) < dep.workers or min(seen[p.name].values()) < per_worker]
            if not todo:
                break
            for name, worker in pool.map(one, [p for p in todo for _ in range(copies)]):
                seen[name][worker] += 1
    finally:
        if own_pool:
            pool.shutdown()
    CHECKED["answers"] += sum(sum(c.values()) for c in seen.values())
    assert not failures, f"{len(failures)} stale or wrong answers:\n" + "\n".join(failures[:20])
    for name, workers in seen.items():
        assert len(workers) == dep.workers, f"{name}: only workers {dict(workers)} answered"
    return seen


class Hammer:
    """Background readers that keep hitting paths on fresh connections (so L1/L2 stay warm and
    hot) until stopped; bounded in time. A 5xx or a connection error is recorded as a failure."""

    def __init__(self, dep, targets, threads=6, max_seconds=60.0, allowed=(200, 404)):
        self.dep = dep
        self.targets = list(targets)  # [(path, headers)]
        self.threads = threads
        self.max_seconds = max_seconds
        self.allowed = allowed
        self.stop_event = threading.Event()
        self.counts = defaultdict(Counter)  # path -> X-Cache counter
        self.failures = []
        self._lock = threading.Lock()
        self._threads = []

    def _run(self, offset):
        deadline = time.monotonic() + self.max_seconds
        i = offset
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            path, headers = self.targets[i % len(self.targets)]
            i += 1
            try:
                response = fresh("GET", self.dep.url(path), headers=headers)
            except requests.RequestException as err:
                with self._lock:
                    self.failures.append(f"{path}: {err!r}")
                continue
            with self._lock:
                if response.status_code not in self.allowed:
                    self.failures.append(f"{path}: {response.status_code} {response.text[:200]}")
                self.counts[path][response.headers.get("X-Cache")] += 1

    def __enter__(self):
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        time.sleep(0.3)  # let the keys get warm (and hot) before the first write
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for thread in self._threads:
            thread.join(20)
        if exc[0] is None:
            assert not self.failures, f"background readers failed: {self.failures[:10]}"
            tiers = sum(self.counts.values(), Counter())
            assert tiers["L1"] > 0, f"the background readers never hit a warm L1: {dict(tiers)}"
