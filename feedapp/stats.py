"""Counters of the cache tiers, counted in process and summed across workers in Redis.

Counting is a dict increment under a lock, so it never adds a round trip to a request. Each
worker adds its deltas to one Redis hash when asked to `flush()` (the stats endpoint flushes
its own worker first; `Flusher` flushes every worker once a second), and announces itself with
a short-lived heartbeat key so the endpoint can say how many workers are live.
"""
import os
import socket
import threading
from collections import Counter

HEARTBEAT_TTL = 5


class Stats:
    def __init__(self, redis_client_factory, keys):
        self._redis = redis_client_factory
        self._keys = keys
        self._lock = threading.Lock()
        self._pending = Counter()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"

    def count(self, name: str, amount: int = 1):
        with self._lock:
            self._pending[name] += amount

    def count_load(self, key: str):
        family = self._keys.family(key)
        with self._lock:
            self._pending["l3.reads"] += 1
            self._pending[f"family.{family}.l3_reads"] += 1

    def count_request(self, tier: str, family: str):
        """One cacheable request, answered from `tier`."""
        with self._lock:
            self._pending[f"requests.{tier}"] += 1
            self._pending[f"family.{family}.requests.{tier}"] += 1

    def flush(self):
        """Add this worker's pending counts to the shared totals; renew its heartbeat."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        redis = self._redis()
        try:
            with redis.pipeline(transaction=False) as pipe:
                for name, amount in pending.items():
                    pipe.hincrby(self._keys.stats(), name, amount)
                pipe.set(f"{self._keys.stats()}:worker:{self.worker_id}", 1, ex=HEARTBEAT_TTL)
                pipe.execute()
        except Exception:
            # Keep the counts for the next flush rather than lose them.
            with self._lock:
                self._pending.update(pending)
            raise

    def totals(self) -> dict:
        """Counters summed over every worker that has flushed, and the number of live workers."""
        redis = self._redis()
        raw = redis.hgetall(self._keys.stats())
        totals = {k.decode(): int(v) for k, v in raw.items()}
        workers = sum(1 for _ in redis.scan_iter(f"{self._keys.stats()}:worker:*", count=1000))
        return {"counters": totals, "workers": workers}


class Flusher(threading.Thread):
    """Flushes a worker's Stats once a second; survives Redis errors."""

    def __init__(self, stats: Stats, interval: float = 1.0):
        super().__init__(name="feedapp-stats-flusher", daemon=True)
        self._stats = stats
        self._interval = interval
        self._stop = threading.Event()

    def run(self):
        while not self._stop.wait(self._interval):
            try:
                self._stats.flush()
            except Exception:  # noqa: BLE001 - Redis may be down; try again next tick
                pass

    def stop(self):
        self._stop.set()
