"""The cascade every cacheable read goes through: `get_or_load(key, loader)`.

L1 (this worker) → L2 (Redis) → loader (MongoDB, L3), refilling upward:
- L1 and L2 are used only while this worker trusts them (docs/design.md, rule 6;
  invalidation/trust.py).
- Concurrent misses of one key in a worker share one load (single-flight); the in-flight
  entry is removed when the load ends, so no per-key lock outlives it.
- Across workers, an L2 miss takes the key's lease; a reader that finds another worker's lease
  waits for that worker's fill instead of loading too, and takes the lease over if its holder
  lets it go without a fill (docs/design.md, rule 8: one store load per cold key per
  deployment; leased.py).
- Fills are guarded in both tiers (docs/design.md, rule 4): L1 by the token of
  `LocalCache.begin`, L2 by the lease checked in Lua.
- A loader's None ("no such document") is cached briefly as absent (penetration guard).
- Any Redis failure skips L2 (the breaker makes that immediate), never fails the read
  (docs/design.md, rule 9).

Each read notes the tier it reached (tracing.note_tier: the request's `X-Cache`). A composed
page (`composed`) is kept in L1 as one entry, evicted with any of the keys it was built from.
"""
import threading
from concurrent.futures import Future

from pymongo.errors import PyMongoError

from .keys import CACHE_FAMILIES
from .leased import LeasedL2
from .local import MISSING
from .tracing import (
    ComposedParts,
    composing,
    note_source,
    note_tier,
    replace_sources,
    sources_mark,
    spoil_sources,
)

ABSENT = object()  # L1's marker for "the store has no such document"
_L1_HITS = {family: f"l1.hits.{family}" for family in CACHE_FAMILIES}  # no f-string per hit


def _hit_counter(family: str) -> str:
    """The counter of an L1 hit of `family`."""
    return _L1_HITS.get(family) or f"l1.hits.{family}"


class TieredCache:
    def __init__(self, *, keys, stats, policy, trust, local=None, remote=None, lease_wait: float = 3.0):
        """policy(family) -> (codec, l1_ttl, l2_ttl, absent_ttl), see feedapp.cache.policy;
        trust: when L1 and L2 may be used (invalidation/trust.py); lease_wait: how long, at
        most, a reader waits for another worker's fill of a key before it loads it too."""
        self.keys = keys
        self.stats = stats
        self.trust = trust
        self._clock = trust.clock
        self.local = local
        self.remote = remote
        self.l2 = LeasedL2(keys=keys, stats=stats, policy=policy, trust=trust, remote=remote, lease_wait=lease_wait)
        self._flights = {}
        self._flights_lock = threading.Lock()

    # --- reads ------------------------------------------------------------------------------

    def l1_trusted(self) -> bool:
        """Whether L1 may be used now (a clock read and a compare: on every read's path)."""
        return self.local is not None and self._clock() < self.trust.l1_until

    def still_holds(self, sources) -> bool:
        """Whether L1 is trusted and still holds, under each key of sources [(key, value, _)],
        that very value: then every read that returned them would return them again (a key
        None only counts, see tracing.note_source)."""
        if not self.l1_trusted():
            return False
        get = self.local.get
        return all(key is None or get(key) is value for key, value, _ in sources)

    def composed(self, key: str, build):
        """build(), kept in L1 under key as one entry whose parts are the keys build() read
        through this cache: evicting any part evicts it (LocalCache.fill_composed). Composing
        a page of 20 posts and their authors then costs one L1 lookup."""
        if not self.l1_trusted():
            return build()
        value = self.local.get(key)
        if value is not MISSING:
            self.stats.count("l1.hits.page")
            note_tier("L1")
            note_source(key, value, "l1.hits.page")
            return value
        self.stats.count("l1.misses.page")
        epoch, mark = self.local.epoch(), sources_mark()
        with ComposedParts.collect() as parts:
            value = build()
        if parts.keep and parts.keys and self.l1_trusted() and self.local.fill_composed(key, value, parts.keys, epoch):
            replace_sources(mark, key, value, "l1.hits.page")
        else:  # composed again from its parts next time, its miss counted again
            note_source(None, None, "l1.misses.page")
        return value

    def get_or_load(self, key: str, loader):
        """The value for key (None when the loader found nothing); see the module docstring."""
        parts = composing.get()  # ComposedParts.record inlined: this is the L1-hit path
        if parts is not None:
            parts.keys.append(key)
        family = self.keys.family(key)
        use_l1 = self.l1_trusted()
        if use_l1:
            value = self.local.get(key)
            if value is not MISSING:
                counter = _hit_counter(family)
                self.stats.count(counter)
                note_tier("L1")
                note_source(key, value, counter)
                return None if value is ABSENT else value
            self.stats.count(f"l1.misses.{family}")
            token = self.local.begin(key)
        try:
            value, tier, size = self._single_flight(key, token if use_l1 else None,
                                                    lambda: self._below_l1(key, family, loader))
            if not use_l1:
                spoil_sources()  # nothing in L1 vouches for this value
            elif self._fill_l1(key, token, value, size):
                # L1 now holds this very value: the next read of key returns it from there.
                note_source(key, ABSENT if value is None else value, _hit_counter(family))
            else:
                spoil_sources()
        except PyMongoError:
            stale = self.local.stale(key) if use_l1 else MISSING
            if stale is MISSING:
                raise
            # Stale-if-error: the store is down and this value only expired (no write evicted it).
            ComposedParts.spoil()
            spoil_sources()
            self.stats.count(f"l1.stale_if_error.{family}")
            value, tier = (None if stale is ABSENT else stale), "L1"
        finally:
            if use_l1:
                self.local.abandon(key, token)
        note_tier(tier)
        return value

    def _single_flight(self, key, token, load):
        if token is None:  # no L1 token to tell old loads from new: let the L2 lease dedupe
            return load()
        with self._flights_lock:
            flight = self._flights.get(key)
            # A load begun before an eviction of key (a write) may bring the old value: join
            # only one begun under our own L1 token, i.e. with no eviction in between.
            leader = flight is None or flight.token is not token
            if leader:
                flight = self._flights[key] = Future()
                flight.token = token
        if not leader:
            self.stats.count("singleflight.shared")
            return flight.result()
        try:
            result = load()
            flight.set_result(result)
            return result
        except BaseException as err:
            flight.set_exception(err)
            raise
        finally:
            with self._flights_lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]

    def _below_l1(self, key, family, loader):
        """(value, tier, its encoded size or None)."""
        sizes = {}
        found, leases = self.l2.lookup([key], sizes)
        if key in found:
            return found[key], "L2", sizes[key]
        value = self.l2.load_and_fill({key: None}, leases, lambda _: {None: loader()}, sizes)[key]
        return value, "L3", sizes.get(key)

    def _fill_l1(self, key, token, value, size=None) -> bool:
        """Fill L1 with value (None: the store has none); whether L1 took it."""
        if self.local.fill(key, token, ABSENT if value is None else value, 0 if value is None else size):
            self.stats.count("l1.fills")
            return True
        self.stats.count("l1.fills_refused")  # evicted since this worker began loading it (or too large)
        return False

    def get_many_or_load(self, keys: dict, loader):
        """Values for several keys ({key: ident}); loader(idents) -> {ident: value}.

        Returns {key: value or None}. L2 is read with one MGET and filled with one pipeline;
        fills are lease-guarded exactly as in get_or_load.
        """
        ComposedParts.record(keys)
        result, tokens, missing, sizes = {}, {}, [], {}
        use_l1 = self.l1_trusted()
        for key in keys:
            value = self.local.get(key) if use_l1 else MISSING
            if value is MISSING:
                missing.append(key)
                if use_l1:
                    self.stats.count(f"l1.misses.{self.keys.family(key)}")
                    tokens[key] = self.local.begin(key)
            else:
                counter = _hit_counter(self.keys.family(key))
                self.stats.count(counter)
                note_source(key, value, counter)
                result[key] = None if value is ABSENT else value
        deepest = "L1"
        try:
            if missing:
                deepest = "L2"
                found, leases = self.l2.lookup(missing, sizes)
                todo = {k: keys[k] for k in missing if k not in found}
                if todo:
                    deepest = "L3"
                    found.update(self.l2.load_and_fill(todo, leases, loader, sizes))
                for key, value in found.items():
                    result[key] = value
                    if key in tokens and self._fill_l1(key, tokens[key], value, sizes.get(key)):
                        note_source(key, ABSENT if value is None else value, _hit_counter(self.keys.family(key)))
                    else:
                        spoil_sources()  # not held in L1: nothing vouches for it
                if len(found) < len(missing):
                    spoil_sources()
        finally:
            for key, token in tokens.items():
                self.local.abandon(key, token)
        note_tier(deepest)
        return result

    def evict_local(self, keys=(), prefixes=()):
        """Evict from this worker's L1, with the loads in flight of those keys (a load begun
        before a write must not be joined after it): the writer's own-worker eviction."""
        with self._flights_lock:
            for key in keys:
                self._flights.pop(key, None)
            if prefixes:
                for key in [k for k in self._flights if k.startswith(tuple(prefixes))]:
                    del self._flights[key]
        if self.local is not None:
            self.local.evict(keys, prefixes)
