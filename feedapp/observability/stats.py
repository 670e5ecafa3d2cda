"""Counters of the cache tiers, counted in process and summed across workers in Redis.

Counting is a plain dict increment in a dict of the counting thread's own (no lock, no round
trip: an L1 hit stays in microseconds). Flushing sums every thread's dict and sends the
difference from what was sent before, so nothing is lost or counted twice. A `Flusher` thread per worker adds the deltas to one Redis hash
once a second (the stats endpoint also flushes its own worker first) and renews the worker's
heartbeat key, so the endpoint can say how many workers are live.

Counter names are dotted: `l1.hits.<family>`, `l2.misses.<family>`, `l3.reads.<family>`,
`requests.<tier>.<family>`, `latency.<bucket upper bound in µs>`, `invalidations.published`, ...
Gauges (a worker's current levels: L1 size, breaker open, listener live) travel with its
heartbeat and are reported per worker and summed.
"""
import json
import os
import socket
import threading
import time
from collections import Counter

HEARTBEAT_TTL = 5
COUNTERS_TTL = 30 * 24 * 3600  # renewed by every flush


class Stats:
    def __init__(self, redis_factory, keys):
        self._redis = redis_factory
        self._keys = keys
        self._lock = threading.Lock()
        self._local = threading.local()
        self._threads = []  # (thread, its counts); a finished thread's counts move to _done
        self._done = Counter()
        self._sent = Counter()
        self._flush_lock = threading.Lock()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._workers_key = keys.stats_workers()  # worker id -> its last heartbeat
        self.gauges = lambda: {}  # set by the owner: this worker's current levels, e.g. L1 size

    def count(self, name: str, amount: int = 1):
        try:
            counts = self._local.counts
        except AttributeError:
            counts = self._local.counts = {}
            with self._lock:
                self._threads.append((threading.current_thread(), counts))
        counts[name] = counts.get(name, 0) + amount  # only this thread writes this dict

    def counted(self) -> Counter:
        """Everything this worker counted so far."""
        with self._lock:
            live = []
            for thread, counts in self._threads:
                if thread.is_alive():
                    live.append((thread, counts))
                else:  # it will count no more: fold it in, so dead threads leave nothing behind
                    self._done.update(counts)
            self._threads = live
            total = Counter(self._done)
            for _, counts in live:
                total.update(counts.copy())  # copy() is atomic under the GIL
        return total

    def pending(self) -> Counter:
        """What this worker counted and has not sent yet."""
        pending = self.counted()
        pending.subtract(self._sent)
        return +pending

    def flush(self):
        """Add this worker's new counts to the shared totals; renew its heartbeat."""
        with self._flush_lock:  # one flush at a time, so each delta is sent once
            total = self.counted()
            delta = total - self._sent
            with self._redis().pipeline(transaction=True) as pipe:  # all or nothing
                for name, amount in delta.items():
                    pipe.hincrby(self._keys.stats(), name, amount)
                heartbeat = json.dumps({"at": time.time(), **self.gauges()})
                pipe.hset(self._workers_key, self.worker_id, heartbeat)
                pipe.expire(self._workers_key, 60)  # every Redis key of ours has a TTL
                pipe.expire(self._keys.stats(), COUNTERS_TTL)
                pipe.execute()
            self._sent = total  # only once Redis has them: a failed flush is retried whole

    def totals(self) -> dict:
        """Counters summed over every worker; live workers and their gauges, summed."""
        redis = self._redis()
        raw = redis.hgetall(self._keys.stats())
        per_worker, gone, gauges = {}, [], Counter()
        for worker, value in redis.hgetall(self._workers_key).items():
            beat = json.loads(value)
            if time.time() - beat.pop("at", 0) > HEARTBEAT_TTL:
                gone.append(worker)  # a worker that stopped reporting (exited or killed)
                continue
            per_worker[worker.decode()] = beat
            gauges.update(beat)
        if gone:
            redis.hdel(self._workers_key, *gone)
        return {
            "counters": {k.decode(): int(v) for k, v in raw.items()},
            "workers": len(per_worker),
            "gauges": dict(gauges),
            "per_worker": dict(sorted(per_worker.items())),
        }


class Flusher(threading.Thread):
    """Flushes a worker's Stats once a second; survives Redis errors."""

    def __init__(self, stats: Stats, interval: float = 1.0):
        super().__init__(name="feedapp-stats-flusher", daemon=True)
        self._stats = stats
        self._interval = interval
        self._stopping = threading.Event()

    def run(self):
        while not self._stopping.wait(self._interval):
            try:
                self._stats.flush()
            except Exception:  # noqa: BLE001 - Redis may be down; the counts wait for the next tick
                pass

    def stop(self):
        self._stopping.set()
