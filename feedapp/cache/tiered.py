"""The read path every cacheable GET goes through: `get_or_load(key, loader)`.

This is the seam the cache tiers plug into. `PassThroughCache` has no tiers: every read is
loaded from the store (L3). Requests report the deepest tier any of their reads reached
through `tiers.deepest()`, which the API layer puts in the `X-Cache` header.
"""
from contextvars import ContextVar

TIER_ORDER = {"L1": 1, "L2": 2, "L3": 3}
_deepest: ContextVar[str | None] = ContextVar("deepest_tier", default=None)


class tiers:
    """The deepest tier the current request's reads reached."""

    @staticmethod
    def reset():
        _deepest.set(None)

    @staticmethod
    def note(tier: str):
        current = _deepest.get()
        if current is None or TIER_ORDER[tier] > TIER_ORDER[current]:
            _deepest.set(tier)

    @staticmethod
    def deepest() -> str | None:
        return _deepest.get()


class PassThroughCache:
    """No tiers: loads every value from the store and reports L3."""

    def __init__(self, stats=None):
        self.stats = stats

    def get_or_load(self, key: str, loader):
        """Return the value for key, as `loader()` builds it (None means absent)."""
        tiers.note("L3")
        if self.stats:
            self.stats.count_load(key)
        return loader()

    def get_many_or_load(self, keys: dict, loader):
        """Values for several keys at once.

        keys maps each cache key to the id the loader needs; loader(ids) returns {id: value}.
        Returns {key: value or None}.
        """
        tiers.note("L3")
        if self.stats:
            for key in keys:
                self.stats.count_load(key)
        loaded = loader(list(keys.values()))
        return {key: loaded.get(ident) for key, ident in keys.items()}

    def invalidate(self, keys=(), prefixes=()):
        """Drop keys (and every key under prefixes) everywhere; return how many were dropped."""
        return 0
