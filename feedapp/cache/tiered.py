"""The cascade every cacheable read goes through: `get_or_load(key, loader)`.

L1 (this worker) → L2 (Redis) → loader (MongoDB, L3), refilling upward:
- L1 is used only while this worker's invalidation listener is live (rule 6).
- Concurrent misses of one key in a worker share one load (single-flight); the in-flight
  entry is removed when the load ends, so no per-key lock outlives it.
- Across workers, an L2 miss takes the key's lease; a reader that finds another worker's lease
  waits briefly for that worker's fill instead of loading too (rule 8).
- Fills are guarded in both tiers (rule 4): L1 by the token of `LocalCache.begin`, L2 by the
  lease checked in Lua.
- A loader's None ("no such document") is cached briefly as absent (penetration guard).
- Any Redis failure skips L2 (the breaker makes that immediate), never fails the read (rule 9).

Requests report the deepest tier any of their reads reached through `tiers.deepest()`, which
the API layer sends as `X-Cache`.
"""
import threading
import time
from concurrent.futures import Future
from contextvars import ContextVar

from .local import MISSING
from .remote import L2Unavailable

TIER_ORDER = {"L1": 1, "L2": 2, "L3": 3}
ABSENT = object()  # L1's marker for "the store has no such document"
ABSENT_BYTES = b""  # L2's marker: no encoded value is empty
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
    """No tiers: loads every value from the store and reports L3 (the "no cache" setup)."""

    def __init__(self, stats=None, keys=None):
        self.stats = stats
        self.keys = keys

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

    def invalidate(self, keys=(), prefixes=()):
        return 0

    def write_through(self, list_keys, entry, cap, also_invalidate=()):
        return 0


class TieredCache:
    def __init__(self, *, keys, stats, policy, local=None, remote=None, publisher=None,
                 listener=None, lease_wait: float = 0.5):
        """policy(family) -> (codec, l1_ttl, l2_ttl, absent_ttl); see feedapp.cache.policy."""
        self.keys = keys
        self.stats = stats
        self.policy = policy
        self.local = local
        self.remote = remote
        self.publisher = publisher
        self.listener = listener
        self.lease_wait = lease_wait
        self._flights = {}
        self._flights_lock = threading.Lock()

    # --- reads ------------------------------------------------------------------------------

    def _l1_trusted(self) -> bool:
        return self.local is not None and (self.listener is None or self.listener.live)

    def get_or_load(self, key: str, loader):
        """The value for key (None when the loader found nothing); see the module docstring."""
        family = self.keys.family(key)
        use_l1 = self._l1_trusted()
        if use_l1:
            value = self.local.get(key)
            if value is not MISSING:
                self.stats.count(f"l1.hits.{family}")
                tiers.note("L1")
                return None if value is ABSENT else value
            self.stats.count(f"l1.misses.{family}")
            token = self.local.begin(key)
        try:
            value, tier = self._single_flight(key, token if use_l1 else None,
                                              lambda: self._below_l1(key, family, loader))
            if use_l1:
                self.local.fill(key, token, ABSENT if value is None else value)
        finally:
            if use_l1:
                self.local.abandon(key, token)
        tiers.note(tier)
        return value

    def _single_flight(self, key, token, load):
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
        codec, _, l2_ttl, absent_ttl = self.policy(family)
        lease = None
        if self.remote is not None:
            try:
                raw = self.remote.get(key)
                if raw is not None:
                    self.stats.count(f"l2.hits.{family}")
                    return self._decode(codec, raw), "L2"
                self.stats.count(f"l2.misses.{family}")
                lease, raw = self.remote.lease(key)
                if raw is not None:
                    return self._decode(codec, raw), "L2"
                if lease is None:
                    raw = self._await_fill(key)
                    if raw is not None:
                        self.stats.count(f"l2.hits.{family}")
                        return self._decode(codec, raw), "L2"
            except L2Unavailable:
                self.stats.count("l2.unavailable")
        value = loader()
        self.stats.count(f"l3.reads.{family}")
        if lease is not None:
            payload = ABSENT_BYTES if value is None else codec.encode(value)
            ttl = absent_ttl if value is None else l2_ttl
            try:
                self.remote.fill(key, lease, payload, int(ttl * 1000))
            except L2Unavailable:
                pass
        return value, "L3"

    def _await_fill(self, key):
        """Another worker is loading key: wait briefly for its fill; the bytes or None."""
        return self._await_fills([key]).get(key)

    def _await_fills(self, keys) -> dict:
        """Poll L2 for keys other workers are filling, for up to lease_wait: {key: bytes}."""
        self.stats.count("l2.lease_waits", len(keys))
        deadline = time.monotonic() + self.lease_wait
        delay, found, waiting = 0.002, {}, list(keys)
        while waiting and time.monotonic() < deadline:
            time.sleep(delay)
            for key, raw in zip(waiting, self.remote.get_many(waiting)):
                if raw is not None:
                    found[key] = raw
            waiting = [k for k in waiting if k not in found]
            delay = min(delay * 2, 0.02)
        if waiting:
            self.stats.count("l2.lease_wait_timeouts", len(waiting))
        return found

    @staticmethod
    def _decode(codec, raw: bytes):
        return None if raw == ABSENT_BYTES else codec.decode(raw)

    def get_many_or_load(self, keys: dict, loader):
        """Values for several keys ({key: ident}); loader(idents) -> {ident: value}.

        Returns {key: value or None}. L2 is read with one MGET and filled with one pipeline;
        fills are lease-guarded exactly as in get_or_load.
        """
        result, tokens, missing = {}, {}, []
        use_l1 = self._l1_trusted()
        deepest = "L1"
        for key in keys:
            value = self.local.get(key) if use_l1 else MISSING
            if value is MISSING:
                missing.append(key)
                if use_l1:
                    tokens[key] = self.local.begin(key)
            else:
                result[key] = None if value is ABSENT else value
        self._count_many("l1", keys, missing, use_l1)
        try:
            if missing:
                deepest = "L2"
                loaded, loaded_from_store = self._many_below_l1(missing, keys, loader)
                if loaded_from_store:
                    deepest = "L3"
                for key, value in loaded.items():
                    result[key] = value
                    if key in tokens:
                        self.local.fill(key, tokens[key], ABSENT if value is None else value)
        finally:
            for key, token in tokens.items():
                self.local.abandon(key, token)
        tiers.note(deepest)
        return result

    def _count_many(self, tier, keys, missing, used):
        if not used:
            return
        missing_set = set(missing)
        for key in keys:
            family = self.keys.family(key)
            self.stats.count(f"{tier}.{'misses' if key in missing_set else 'hits'}.{family}")

    def _many_below_l1(self, missing, keys, loader):
        found, leases = {}, {}
        if self.remote is not None:
            try:
                raws = self.remote.get_many(missing)
                for key, raw in zip(missing, raws):
                    if raw is not None:
                        found[key] = self._decode(self.policy(self.keys.family(key))[0], raw)
                still = [k for k in missing if k not in found]
                self._count_many("l2", missing, still, True)
                outcomes = self.remote.lease_many(still)
                leases = {key: token for key, (token, _) in outcomes.items()}
                landed = {key: raw for key, (_, raw) in outcomes.items() if raw is not None}
                busy = [k for k in still if leases[k] is None and k not in landed]
                if busy:  # other workers are loading these: wait for their fills
                    landed.update(self._await_fills(busy))
                for key, raw in landed.items():
                    found[key] = self._decode(self.policy(self.keys.family(key))[0], raw)
            except L2Unavailable:
                self.stats.count("l2.unavailable")
        todo = [k for k in missing if k not in found]
        if not todo:
            return found, False
        values = loader([keys[k] for k in todo])
        fills = []
        for key in todo:
            value = values.get(keys[key])
            found[key] = value
            self.stats.count(f"l3.reads.{self.keys.family(key)}")
            if leases.get(key):
                codec, _, l2_ttl, absent_ttl = self.policy(self.keys.family(key))
                payload = ABSENT_BYTES if value is None else codec.encode(value)
                fills.append((key, leases[key], payload, int((absent_ttl if value is None else l2_ttl) * 1000)))
        if fills:
            try:
                self.remote.fill_many(fills)
            except L2Unavailable:
                pass
        return found, True

    # --- writes -----------------------------------------------------------------------------

    def invalidate(self, keys=(), prefixes=()) -> int:
        """Evict keys (and keys under prefixes) from L2, this worker's L1 and every other
        worker's L1; returns once every live worker has applied it (or the ack timeout).

        Returns how many L2 values were deleted.
        """
        keys, prefixes = list(keys), list(prefixes)
        deleted = 0
        if self.remote is not None:
            try:
                deleted = self.remote.delete(keys)
                for prefix in prefixes:
                    deleted += self.remote.delete_prefix(prefix)
            except L2Unavailable:
                self.stats.count("l2.invalidation_failures")
        self._evict_everywhere(keys, prefixes)
        return deleted

    def write_through(self, list_keys, entry: str, cap: int, also_invalidate=()) -> int:
        """Insert a post entry into the cached post lists among list_keys (in L2, atomically
        per list), invalidate also_invalidate, and evict all of them from every L1."""
        list_keys, others = list(list_keys), list(also_invalidate)
        updated = 0
        if self.remote is not None:
            try:
                for start in range(0, len(list_keys), 500):
                    updated += self.remote.insert_entry(list_keys[start:start + 500], entry, cap)
                self.remote.delete(others)
            except L2Unavailable:
                self.stats.count("l2.invalidation_failures")
        self._evict_everywhere(list_keys + others, [])
        return updated

    def _evict_everywhere(self, keys, prefixes):
        with self._flights_lock:  # loads begun before this write must not be joined after it
            for key in keys:
                self._flights.pop(key, None)
        if self.local is not None:
            self.local.evict(keys, prefixes)
        if self.publisher is not None and (keys or prefixes):
            try:
                self.publisher.publish(keys, prefixes)
            except Exception:  # noqa: BLE001 - listeners that cannot hear us clear their L1
                self.stats.count("invalidations.publish_failures")
