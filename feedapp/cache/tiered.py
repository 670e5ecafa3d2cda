"""The cascade every cacheable read goes through: `get_or_load(key, loader)`.

L1 (this worker) → L2 (Redis) → loader (MongoDB, L3), refilling upward:
- L1 and L2 are used only while this worker trusts them (docs/design.md, rule 6;
  invalidation/trust.py).
- Concurrent misses of one key in a worker share one load (single-flight); the in-flight
  entry is removed when the load ends, so no per-key lock outlives it.
- Across workers, an L2 miss takes the key's lease; a reader that finds another worker's lease
  waits for that worker's fill instead of loading too, and takes the lease over if its holder
  lets it go without a fill (docs/design.md, rule 8: one store load per cold key per
  deployment).
- Fills are guarded in both tiers (docs/design.md, rule 4): L1 by the token of
  `LocalCache.begin`, L2 by the lease checked in Lua.
- A loader's None ("no such document") is cached briefly as absent (penetration guard).
- Any Redis failure skips L2 (the breaker makes that immediate), never fails the read
  (docs/design.md, rule 9).

Requests report the deepest tier any of their reads reached through `tiers.deepest()`, which
the API layer sends as `X-Cache`.
"""
import logging
import threading
import time
from concurrent.futures import Future
from contextvars import ContextVar

from pymongo.errors import PyMongoError

from .keys import CACHE_FAMILIES
from .local import MISSING
from .remote import L2Unavailable

log = logging.getLogger(__name__)

TIER_ORDER = {"L1": 1, "L2": 2, "L3": 3}
ABSENT = object()  # L1's marker for "the store has no such document"
ABSENT_BYTES = b""  # L2's marker: no encoded value is empty
MAX_UNAPPLIED = 10_000
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


_parts: ContextVar["DerivedParts | None"] = ContextVar("derived_parts", default=None)
_L1_HITS = {family: f"l1.hits.{family}" for family in CACHE_FAMILIES}  # no f-string per hit


class DerivedParts:
    """The cache keys a derived value is being built from (see TieredCache.derived)."""

    def __init__(self):
        self.keys = []
        self.keep = True

    @staticmethod
    def record(keys):
        parts = _parts.get()
        if parts is not None:
            parts.keys.extend(keys)

    @staticmethod
    def spoil():
        """What is being built did not come from cached values alone (a page read straight
        from the store, a stale-if-error value): it must not be kept."""
        parts = _parts.get()
        if parts is not None:
            parts.keep = False


class PassThroughCache:
    """No tiers: loads every value from the store and reports L3 (the "no cache" setup)."""

    local = None

    def __init__(self, stats=None, keys=None):
        self.stats = stats
        self.keys = keys

    def derived(self, key: str, build):
        return build()

    def get_or_load(self, key: str, loader):
        tiers.note("L3")
        if self.stats:
            self.stats.count(f"l3.reads.{self.keys.family(key)}")
        return loader()

    def get_many_or_load(self, keys: dict, loader):
        tiers.note("L3")
        if self.stats:
            for key in keys:
                self.stats.count(f"l3.reads.{self.keys.family(key)}")
        loaded = loader(list(keys.values()))
        return {key: loaded.get(ident) for key, ident in keys.items()}

    def evict_local(self, keys=(), prefixes=()):
        pass


class TieredCache:
    def __init__(self, *, keys, stats, policy, trust, local=None, remote=None, lease_wait: float = 3.0):
        """policy(family) -> (codec, l1_ttl, l2_ttl, absent_ttl), see feedapp.cache.policy;
        trust: when L1 and L2 may be used (invalidation/trust.py); lease_wait: how long, at
        most, a reader waits for another worker's fill of a key before it loads it too."""
        self.keys = keys
        self.stats = stats
        self.policy = policy
        self.trust = trust
        self._clock = trust.clock
        self.local = local
        self.remote = remote
        self.lease_wait = lease_wait
        self._flights = {}
        self._flights_lock = threading.Lock()

    # --- reads ------------------------------------------------------------------------------

    def _l1_trusted(self) -> bool:
        return self.local is not None and self._clock() < self.trust.l1_until

    def derived(self, key: str, build):
        """build(), kept in L1 under key as one entry whose parts are the keys build() read
        through this cache: evicting any part evicts it (LocalCache.fill_derived). Composing
        a page of 20 posts and their authors then costs one L1 lookup."""
        if not self._l1_trusted():
            return build()
        value = self.local.get(key)
        if value is not MISSING:
            self.stats.count("l1.hits.page")
            tiers.note("L1")
            return value
        self.stats.count("l1.misses.page")
        epoch = self.local.epoch()
        parts = DerivedParts()
        token = _parts.set(parts)
        try:
            value = build()
        finally:
            _parts.reset(token)
        if parts.keep and parts.keys and self._l1_trusted():
            self.local.fill_derived(key, value, parts.keys, epoch)
        return value

    def get_or_load(self, key: str, loader):
        """The value for key (None when the loader found nothing); see the module docstring."""
        parts = _parts.get()  # inline DerivedParts.record: this is the L1-hit path
        if parts is not None:
            parts.keys.append(key)
        family = self.keys.family(key)
        use_l1 = self._l1_trusted()
        if use_l1:
            value = self.local.get(key)
            if value is not MISSING:
                self.stats.count(_L1_HITS.get(family) or f"l1.hits.{family}")
                tiers.note("L1")
                return None if value is ABSENT else value
            self.stats.count(f"l1.misses.{family}")
            token = self.local.begin(key)
        try:
            value, tier, size = self._single_flight(key, token if use_l1 else None,
                                                    lambda: self._below_l1(key, family, loader))
            if use_l1:
                self._fill_l1(key, token, value, size)
        except PyMongoError:
            stale = self.local.stale(key) if use_l1 else MISSING
            if stale is MISSING:
                raise
            # Stale-if-error: the store is down and this value only expired (no write evicted it).
            DerivedParts.spoil()
            self.stats.count(f"l1.stale_if_error.{family}")
            value, tier = (None if stale is ABSENT else stale), "L1"
        finally:
            if use_l1:
                self.local.abandon(key, token)
        tiers.note(tier)
        return value

    def refresh_expiring(self, batch: int = 500) -> int:
        """Refresh-ahead: fetch again from L2 the L1 entries that were read and are about to
        expire (LocalCache.expiring), one MGET per `batch` keys, and store them as new fills.
        Hot keys then stay in L1 instead of missing once per TTL in every worker; no TTL is
        extended (each value comes fresh from L2) and an invalidation during the fetch wins
        (docs/design.md, rule 4). Keys L2 no longer holds are left to expire. Returns how
        many were stored."""
        if self.remote is None or not self._l1_trusted():
            return 0
        keys = self.local.expiring()
        refreshed = 0
        for start in range(0, len(keys), batch):
            refreshed += self._refresh(keys[start:start + batch])
        if refreshed:
            self.stats.count("l1.refreshes", refreshed)
        return refreshed

    def _refresh(self, keys) -> int:
        # Optional work: skipped unless L1 (and so L2) is trusted before and after the MGET.
        if not self._l1_trusted():
            return 0
        tokens = self.local.begin_refresh(keys)
        stored = 0
        try:
            raws = self.remote.get_many(keys)
            if not self._l1_trusted():  # trust lapsed during the MGET
                return 0
            for key, raw in zip(keys, raws):
                value = self._decode(key, raw)
                if value is not MISSING and self.local.fill_refreshed(key, tokens[key], ABSENT if value is None else value,
                                                                      len(raw)):
                    stored += 1
        except L2Unavailable:
            pass  # the entries expire as usual; readers take the normal path
        finally:
            self.local.end_refresh(tokens)
        return stored

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
        found, leases = self._from_l2([key], sizes)
        if key in found:
            return found[key], "L2", sizes[key]
        value = self._load_and_fill({key: None}, leases, lambda _: {None: loader()}, sizes)[key]
        return value, "L3", sizes.get(key)

    def _from_l2(self, keys, sizes=None) -> tuple:
        """Look keys up in L2: ({key: value} found, {key: lease token} for those we must load).
        sizes: gets each found value's encoded size (for L1's byte budget).

        A key that misses gets its lease unless another reader holds it; then we wait briefly
        for that reader's fill. Each key is counted once, as an L2 hit or an L2 miss.
        """
        found, leases = {}, {}
        if self.remote is None:
            return found, leases
        if not self._clock() < self.trust.l2_until:
            # An eviction some write could not make is not applied everywhere yet: L2 may
            # still hold what it removed (invalidation/recovery.py).
            self.stats.count("l2.untrusted", len(keys))
            return found, leases
        try:
            raws = dict(zip(keys, self.remote.get_many(keys)))
            missing = [k for k in keys if raws[k] is None]
            for key, (token, raw) in self.remote.lease_many(missing).items():
                leases[key] = token
                raws[key] = raw
            busy = [k for k in missing if leases[k] is None and raws[k] is None]
            if busy:  # other workers are loading these: wait for their fills
                filled, taken = self._await_fills(busy)
                raws.update(filled)
                leases.update(taken)
        except L2Unavailable:
            self.stats.count("l2.unavailable", len(keys))
            return {}, {}
        for key in keys:
            value = self._decode(key, raws.get(key))
            if value is MISSING:
                self.stats.count(f"l2.misses.{self.keys.family(key)}")
            else:
                self.stats.count(f"l2.hits.{self.keys.family(key)}")
                found[key] = value
                if sizes is not None:
                    sizes[key] = len(raws[key])
        return found, {k: t for k, t in leases.items() if t is not None}

    def _load_and_fill(self, keys: dict, leases: dict, loader, sizes=None) -> dict:
        """Load keys ({key: ident}) from the store; fill L2 where we hold the lease. sizes:
        gets the encoded size of each value encoded for L2."""
        try:
            values = loader(list(keys.values()))
        except BaseException:
            self._release(leases)
            raise
        result, fills = {}, []
        for key, ident in keys.items():
            value = result[key] = values.get(ident)
            family = self.keys.family(key)
            self.stats.count(f"l3.reads.{family}")
            if key in leases:
                codec, _, l2_ttl, absent_ttl = self.policy(family)
                payload = ABSENT_BYTES if value is None else codec.encode(value)
                if sizes is not None:
                    sizes[key] = len(payload)
                ttl = absent_ttl if value is None else l2_ttl
                fills.append((key, leases[key], payload, int(ttl * 1000)))
        if fills:
            try:
                landed = self.remote.fill_many(fills)
            except L2Unavailable:
                return result
            self.stats.count("l2.fills", landed)
            if landed < len(fills):  # a write invalidated the key meanwhile (docs/design.md, rule 4)
                self.stats.count("l2.fills_refused", len(fills) - landed)
        return result

    def _fill_l1(self, key, token, value, size=None):
        if self.local.fill(key, token, ABSENT if value is None else value, 0 if value is None else size):
            self.stats.count("l1.fills")
        else:  # evicted since this worker began loading it (or too large to keep)
            self.stats.count("l1.fills_refused")

    def _release(self, leases):
        if leases:
            try:
                self.remote.release(leases)
            except L2Unavailable:
                pass  # they expire after lease_ms

    def _await_fills(self, keys) -> tuple:
        """Wait for keys other readers are loading: ({key: bytes} filled meanwhile, {key:
        lease token} for those whose lease came free, which we now load). Asking for the
        lease again on each poll returns the value once it has landed, or the lease once its
        holder released it or let it expire (it failed, or died): so one reader loads each
        key however slow the store, and nobody waits past `lease_wait`."""
        self.stats.count("l2.lease_waits", len(keys))
        deadline = self._clock() + self.lease_wait
        delay, found, taken, waiting = 0.002, {}, {}, list(keys)
        while waiting and self._clock() < deadline:
            time.sleep(delay)
            for key, (token, raw) in self.remote.lease_many(waiting).items():
                if raw is not None:
                    found[key] = raw
                elif token is not None:
                    taken[key] = token
            waiting = [k for k in waiting if k not in found and k not in taken]
            delay = min(delay * 2, 0.02)
        if waiting:
            self.stats.count("l2.lease_wait_timeouts", len(waiting))
        return found, taken

    def _decode(self, key, raw):
        """The value stored in L2, None for "absent", MISSING for nothing (or unreadable)."""
        if raw is None:
            return MISSING
        if raw == ABSENT_BYTES:
            return None
        try:
            return self.policy(self.keys.family(key))[0].decode(raw)
        except Exception:  # noqa: BLE001 - an old or damaged entry is a miss, not a 500
            self.stats.count("l2.undecodable")
            return MISSING

    def get_many_or_load(self, keys: dict, loader):
        """Values for several keys ({key: ident}); loader(idents) -> {ident: value}.

        Returns {key: value or None}. L2 is read with one MGET and filled with one pipeline;
        fills are lease-guarded exactly as in get_or_load.
        """
        DerivedParts.record(keys)
        result, tokens, missing, sizes = {}, {}, [], {}
        use_l1 = self._l1_trusted()
        for key in keys:
            value = self.local.get(key) if use_l1 else MISSING
            if value is MISSING:
                missing.append(key)
                if use_l1:
                    self.stats.count(f"l1.misses.{self.keys.family(key)}")
                    tokens[key] = self.local.begin(key)
            else:
                self.stats.count(f"l1.hits.{self.keys.family(key)}")
                result[key] = None if value is ABSENT else value
        deepest = "L1"
        try:
            if missing:
                deepest = "L2"
                found, leases = self._from_l2(missing, sizes)
                todo = {k: keys[k] for k in missing if k not in found}
                if todo:
                    deepest = "L3"
                    found.update(self._load_and_fill(todo, leases, loader, sizes))
                for key, value in found.items():
                    result[key] = value
                    if key in tokens:
                        self._fill_l1(key, tokens[key], value, sizes.get(key))
        finally:
            for key, token in tokens.items():
                self.local.abandon(key, token)
        tiers.note(deepest)
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
