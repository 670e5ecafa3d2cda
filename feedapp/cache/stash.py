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
        super().__init__(max_bytes, self._expiry, timer=timer, getsizeof=self._stated_size)
        self.max_entries = max_entries
        self.stash = stash
        self.sizes = {}
        self.live = {}  # key -> (value, expires): what `LocalCache.get` reads without a lock
        self._ttu = ttu
        self._expires = None
        self._stating = 0
        self._recency = getattr(self, "_TLRUCache__items")  # cachetools' LRU order (pinned 8.0)

    def _expiry(self, key, value, now):
        self._expires = expires = self._ttu(key, value, now)
        return expires

    def touch(self, keys):
        """Mark keys as just used (LRU), for reads that did not go through `__getitem__`."""
        recency = self._recency
        for key in keys:
            if key in recency:
                recency.move_to_end(key)

    def _stated_size(self, value):
        return self._stating

    def put(self, key, value, size: int):
        self.expire()  # so that popitem() below always finds a live entry to drop
        if key not in self:
            while Cache.__len__(self) >= self.max_entries:
                self.popitem()
        self._stating = size
        self[key] = value
        if Cache.__contains__(self, key):
            self.sizes[key] = size
            self.live[key] = (value, self._expires)
        else:  # expired already (a TTL of 0): cachetools dropped it, and any older value of key
            self.sizes.pop(key, None)
            self.live.pop(key, None)

    def __delitem__(self, key):  # pop() and popitem() come through here; expire() does not
        self.sizes.pop(key, None)
        self.live.pop(key, None)
        super().__delitem__(key)

    def held_keys(self) -> list:
        """Every key held, expired and not yet purged included (keys() hides those)."""
        return list(Cache.__iter__(self))

    def discard(self, key) -> bool:
        """Remove key whether or not its value has expired (pop() leaves an expired, unpurged
        entry behind, for a later expire() to stash). True if a live value was removed."""
        if not Cache.__contains__(self, key):
            return False
        try:
            del self[key]
            return True
        except KeyError:  # it had expired: TLRUCache removes it all the same, then says so
            return False

    def expire(self, time=None):
        expired = super().expire(time)
        for key, value in expired:
            self.live.pop(key, None)
            self.stash[key] = (value, self.sizes.pop(key, 0))
        return expired

    def clear(self):
        super().clear()
        self.sizes.clear()
        self.live.clear()
