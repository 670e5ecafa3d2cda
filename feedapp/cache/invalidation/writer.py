"""Every eviction a write causes: `Writer.invalidate` and `Writer.write_through`.

In order: L2 first (delete, or insert a post entry into cached lists), then this worker's L1
(so no reader here can refill it from the old L2 value), then every other worker's L1
(`Publisher.publish`, which returns once each has applied it or stopped trusting). The write
side never fails a write (docs/design.md, rule 1): what it cannot do now becomes an
`Eviction` task of the recovery, which revokes this worker's trust, and the write then waits
one recovery lease (trust.py) after the outbox took the task, so that every other worker has
either seen it (and stopped trusting until it is delivered) or stopped trusting anyway.
Returning from here therefore means: no worker serves what this write changed from a cache
(README, "When things fail").
"""
import logging
import time

from ...infra.redis_access import REDIS_ERRORS
from ..remote import L2Unavailable
from .tasks import Eviction

log = logging.getLogger(__name__)

BATCH = 500  # keys per L2 call: each well inside the socket timeout


class Writer:
    def __init__(self, remote, publisher, recovery, evict_local, trust, stats):
        """evict_local(keys, prefixes): this worker's L1 and its loads in flight."""
        self._remote = remote
        self._publisher = publisher
        self._recovery = recovery
        self._evict_local = evict_local
        self._trust = trust
        self._stats = stats

    def invalidate(self, keys=(), prefixes=()) -> int:
        """Evict keys (and every key under prefixes) from every tier of every worker;
        the number of L2 values deleted."""
        keys, prefixes = list(keys), list(prefixes)
        try:
            deleted = self._delete_in_l2(keys, prefixes)
        except L2Unavailable:
            self._unfinished(keys, prefixes)
            return 0
        self._evict_others(keys, prefixes)
        return deleted

    def write_through(self, list_keys, entry: str, cap: int, evict=()) -> int:
        """Insert a post entry into the cached post lists among list_keys (in L2, atomically
        per list), delete `evict`, and evict all of them from every L1; lists updated."""
        list_keys, evict = list(list_keys), list(evict)
        try:
            updated = sum(self._remote.insert_entry(list_keys[i:i + BATCH], entry, cap)
                          for i in range(0, len(list_keys), BATCH))
            self._delete_in_l2(evict, [])
        except L2Unavailable:
            self._unfinished(list_keys + evict, [])
            return 0
        self._evict_others(list_keys + evict, [])
        return updated

    def deliver(self, keys, prefixes):
        """Evict from L2 and every L1 now, or raise (the recovery's way to finish a task)."""
        self._delete_in_l2(keys, prefixes)
        self._evict_local(keys, prefixes)
        if self._publisher is not None and (keys or prefixes):
            self._publisher.publish(keys, prefixes)

    def _evict_others(self, keys, prefixes):
        self._evict_local(keys, prefixes)
        if self._publisher is None or not (keys or prefixes):
            return
        try:
            self._publisher.publish(keys, prefixes)
        except REDIS_ERRORS as err:
            log.warning("could not publish an invalidation of %d keys: %r", len(keys) + len(prefixes), err)
            self._stats.count("invalidations.publish_failures")
            self._unfinished(keys, prefixes, evicted_in_l2=True)

    def _unfinished(self, keys, prefixes, evicted_in_l2=False):
        """Hand the eviction to the recovery (this worker stops trusting its caches at once),
        evict what we can, and wait one recovery lease after the outbox took it."""
        if not evicted_in_l2:
            self._stats.count("l2.invalidation_failures")
        recorded_at = self._recovery.record(Eviction(keys, prefixes))
        self._evict_local(keys, prefixes)
        if not evicted_in_l2 and self._publisher is not None:
            try:  # other workers' L1 may be reachable when L2's node is not (a cluster)
                self._publisher.publish(keys, prefixes)
            except REDIS_ERRORS:
                pass
        if recorded_at is not None:
            time.sleep(max(0.0, recorded_at + self._trust.recovery_lease - self._trust.clock()))

    def _delete_in_l2(self, keys, prefixes) -> int:
        deleted = sum(self._remote.delete(keys[i:i + BATCH]) for i in range(0, len(keys), BATCH))
        return deleted + sum(self._remote.delete_prefix(prefix) for prefix in prefixes)
