"""Workers for the cache tests: the tiers of one gunicorn worker, built by the same
`build_tiers` the app uses, sharing a real Redis (or Redis Cluster) and one store.

`make_worker(url, name)` returns a `Worker` whose attributes are its cache's and its writer's
(`get_or_load`, `invalidate`, `local`, `remote`, ...), plus `listener`, `trust`, `recovery`.
"""
import threading
import time

import redis as redis_lib

from feedapp.cache.keys import Keys
from feedapp.cache.policy import make_policy
from feedapp.cache.tiers import build_tiers
from feedapp.config import Config
from feedapp.infra.redis_access import connect, is_cluster, subscriber
from feedapp.infra.store import LockedDatabase
from feedapp.observability.stats import Stats
from feedapp.repository import Repository

KEYS = Keys("t:v1")
KEY = KEYS.profile("42")


def shared_store():
    """One in-process store for the workers of a test (the outbox and recounts live there)."""
    import mongomock

    return Repository(LockedDatabase(mongomock.MongoClient(tz_aware=False)["t"]))


class Worker:
    def __init__(self, tiers, stats, client):
        self.tiers = tiers
        self.stats = stats
        self.client = client
        self.listener = tiers.listener
        self.trust = tiers.trust
        self.recovery = tiers.recovery

    def __getattr__(self, name):
        for part in (self.tiers.cache, self.tiers.writer):
            if hasattr(part, name):
                return getattr(part, name)
        raise AttributeError(name)

    def stop(self, wait: float = 5):
        self.tiers.stop(wait)


def make_worker(url, name, *, repo=None, offline=None, mode="tiered", lease=1.0, l1_clock=time.monotonic,
                refresh_window=0, l1_maxsize=100, l1_sizeof=None, wait=True) -> Worker:
    """offline: an Event that, while set, makes the listener's reconnects fail. url may name a
    Redis Cluster (tests/cluster runs some of these tests there)."""
    client = connect(url, timeout=1)
    stats = Stats(lambda: client, KEYS)
    offline = offline or threading.Event()

    def subscribe():
        if offline.is_set():
            raise redis_lib.ConnectionError("test: subscriber cut off")
        return subscriber(url, 1, KEYS.channel, client if is_cluster(client) else None)

    config = Config(cache_mode=mode, trust_lease=lease, l1_maxsize=l1_maxsize, l1_refresh_window=refresh_window,
                    lease_ms=2000, explore_ttl=120)
    policy = make_policy(config)
    tiers = build_tiers(config, keys=KEYS, policy=policy, stats=stats, redis=client, subscriber=subscribe,
                        repo=repo or shared_store(), origin=name, l1_clock=l1_clock, l1_sizeof=l1_sizeof)
    worker = Worker(tiers.start(), stats, client)
    if wait:
        assert eventually(tiers.trust.l1 if mode == "tiered" else tiers.trust.l2), f"{name} never trusted its caches"
    return worker


def eventually(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()
