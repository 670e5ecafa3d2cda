"""L1's storage: a TTL + LRU cache bounded in entries and in bytes (`StashingTLRU`) whose
expired values move to a byte-bounded `Stash`, the last values stale-if-error may offer.
LocalCache (local.py) holds both under its lock; neither class locks anything itself.
"""
from cachetools import Cache, LRUCache, TLRUCache


class Stash(LRUCache):
    """Expired values for stale-if-error, as (value, size) pairs counted in bytes."""

    def __init__(self, max_bytes):
        super().__init__(max_bytes, getsizeof=lambda pair: pair[1])


class StashingTLRU(TLRUCache):
    """A TLRUCache bounded in bytes and entries that moves what expires into `stash`.

    Sizes are stated by `put`: cachetools asks `getsizeof(value)` during the store, which
    answers with the size `put` was given (the value alone cannot tell its encoded size).
    `sizes` keeps them per key, so what expires enters the stash with its size.
    """

    def __init__(self, max_entries, max_bytes, ttu, timer, stash):
        super().__init__(max_bytes, ttu, timer=timer, getsizeof=self._stated_size)
        self.max_entries = max_entries
        self.stash = stash
        self.sizes = {}
        self._stating = 0

    def _stated_size(self, value):
        return self._stating

    def put(self, key, value, size: int):
        self.expire()  # so that popitem() below always finds a live entry to drop
        if key not in self:
            while Cache.__len__(self) >= self.max_entries:
                self.popitem()
        self._stating = size
        self[key] = value
        self.sizes[key] = size

    def __delitem__(self, key):  # pop() and popitem() come through here; expire() does not
        self.sizes.pop(key, None)
        super().__delitem__(key)

    def expire(self, time=None):
        expired = super().expire(time)
        for key, value in expired:
            self.stash[key] = (value, self.sizes.pop(key, 0))
        return expired

    def clear(self):
        super().clear()
        self.sizes.clear()
