"""Refresh-ahead: `RefreshAhead(cache).run()` fetches again from L2 the L1 entries that were
read and are about to expire (LocalCache.expiring), so hot keys stay in L1 instead of missing
once per TTL in every worker. The worker's maintenance thread runs it (runtime/maintenance.py).
"""
from .cascade import ABSENT
from .local import MISSING
from .remote import L2Unavailable


class RefreshAhead:
    def __init__(self, cache, batch: int = 500):
        """cache: the worker's TieredCache; batch: keys per MGET."""
        self.cache = cache
        self.batch = batch

    def run(self) -> int:
        """Fetch the expiring entries again, one MGET per `batch` keys, and store them as new
        fills (a value L2 holds the same bytes of is stored as the object held). No TTL is extended
        but by a fresh read of L2, and an invalidation during the fetch wins (docs/design.md,
        rule 4). Keys L2 no longer holds are left to expire.
        Returns how many were stored."""
        cache = self.cache
        if cache.remote is None or not cache.l1_trusted():
            return 0
        keys = cache.local.expiring()
        refreshed = 0
        for start in range(0, len(keys), self.batch):
            refreshed += self._refresh(keys[start:start + self.batch])
        if refreshed:
            cache.stats.count("l1.refreshes", refreshed)
        return refreshed

    def _refresh(self, keys) -> int:
        # Optional work: skipped unless L1 (and so L2) is trusted before and after the MGET.
        cache, local = self.cache, self.cache.local
        if not cache.l1_trusted():
            return 0
        tokens = local.begin_refresh(keys)
        stored = 0
        try:
            raws = cache.remote.get_many(keys)
            if not cache.l1_trusted():  # trust lapsed during the MGET
                return 0
            for key, raw in zip(keys, raws):
                value = cache.l2.decode(key, raw)
                if value is MISSING:
                    continue
                value = ABSENT if value is None else value
                held = local.peek(key)
                if held is not MISSING and raw == cache.l2.encode(key, None if held is ABSENT else held):
                    # The same bytes: the very object stays, and an answer made from it
                    # (api/replay.py) stays valid.
                    value = held
                if local.fill_refreshed(key, tokens[key], value, len(raw)):
                    stored += 1
        except L2Unavailable:
            pass  # the entries expire as usual; readers take the normal path
        finally:
            local.end_refresh(tokens)
        return stored
