"""What the current request's cache reads did, kept per request (a ContextVar each).

- The deepest tier any read reached (`start_request_trace`, `note_tier`, `deepest_tier`): the
  API layer sends it as `X-Cache` and counts the request in that tier.
- The L1 values the request's reads returned (`note_source`, `sources`): when L1 holds every
  one of them (hits, and loads filled into L1), the answer is a function of those values
  alone, and may be given again while L1 still holds each of them (feedapp/api/replay.py,
  TieredCache.still_holds).
- The parts of a composed page being built (`ComposedParts`): the cache keys read while it is
  composed, so L1 can evict the page with any of them (TieredCache.composed).
"""
from contextlib import contextmanager
from contextvars import ContextVar

TIER_ORDER = {"L1": 1, "L2": 2, "L3": 3}
_deepest: ContextVar[str | None] = ContextVar("deepest_tier", default=None)
# [(key, the very object L1 returned, its hit counter)] of this request; None: not traced, or
# a read returned what L1 does not vouch for (a stale-if-error value).
_sources: ContextVar[list | None] = ContextVar("l1_sources", default=None)


def start_request_trace():
    """Forget the tiers and sources noted so far: a new request begins (a Flask before_request
    hook)."""
    _deepest.set(None)
    _sources.set([])


def note_tier(tier: str):
    """Record that a read of the current request reached `tier` ("L1", "L2" or "L3")."""
    current = _deepest.get()
    if current is None or TIER_ORDER[tier] > TIER_ORDER[current]:
        _deepest.set(tier)


def deepest_tier() -> str | None:
    """The deepest tier the current request's reads reached (None: no cached read yet)."""
    return _deepest.get()


def note_source(key: str | None, value, counter: str):
    """Record that a read of the current request took `value` from L1 under `key` (counted as
    `counter`); key None: no value, a count that answering again counts again (a composed
    page's miss)."""
    sources = _sources.get()
    if sources is not None:
        sources.append((key, value, counter))


def sources_mark() -> int:
    """Where the current request's sources end now (for `replace_sources`)."""
    found = _sources.get()
    return 0 if found is None else len(found)


def replace_sources(mark: int, key: str, value, counter: str):
    """The sources noted since `mark` are now one L1 entry, `value` under `key`: a composed
    page kept in L1, which the next read of the page takes instead of its parts."""
    found = _sources.get()
    if found is not None:
        found[mark:] = [(key, value, counter)]


def spoil_sources():
    """A read returned a value L1 does not vouch for: the answer is not L1's alone."""
    _sources.set(None)


def sources() -> tuple | None:
    """The current request's L1 sources [(key, value, counter)]: the values its reads returned,
    each of which L1 holds (an L1 hit, or a value loaded and then filled into L1); None when a
    read returned a value L1 does not hold, or when there was no read."""
    found = _sources.get()
    return tuple(found) if found else None


class ComposedParts:
    """The cache keys a composed page is being built from, and whether it may be kept."""

    def __init__(self):
        self.keys = []
        self.keep = True

    @staticmethod
    def record(keys):
        """Name keys as parts of the page being composed (if one is)."""
        parts = composing.get()
        if parts is not None:
            parts.keys.extend(keys)

    @staticmethod
    def spoil():
        """What is being built did not come from cached values alone (a page read straight
        from the store, a stale-if-error value): it must not be kept."""
        spoil_sources()
        parts = composing.get()
        if parts is not None:
            parts.keep = False

    @staticmethod
    @contextmanager
    def collect():
        """Collect the parts read inside the block into the ComposedParts it yields."""
        parts = ComposedParts()
        token = composing.set(parts)
        try:
            yield parts
        finally:
            composing.reset(token)


# The page being composed in this context, if any. Public so the L1-hit path can read it
# without a function call (TieredCache.get_or_load).
composing: ContextVar[ComposedParts | None] = ContextVar("composed_parts", default=None)
