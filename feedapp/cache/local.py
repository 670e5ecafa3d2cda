"""L1: this worker's in-process cache (cachetools TLRU changed under a lock; see `get`).

- Bounded by `maxsize` entries and by `max_bytes`, counted by each entry's encoded size (the
  L2 payload's length when the value came from L2, the codec's output for a load, an orjson
  estimate for composed pages; see `fill`). Live entries and the stale-if-error stash share
  that budget: room is made by dropping stashed values first, then the least recently used
  entries. An entry larger than `max_bytes / 64` is not kept (see MAX_ENTRY_SHARE). Each
  entry gets a hard TTL from its key family when it is stored, and reads never extend it.
- Fill guard: a reader calls `begin(key)` before it looks further down (L2, L3) and passes the
  token to `fill()`. Any eviction of that key in between (a local write, an invalidation
  message, a clear) withdraws the token, so a value read before a write can never be stored
  after that write's eviction. Tokens exist only while a fill is in flight; nothing per key is
  left behind.
- Stale-if-error: entries that reach their TTL move to a small stash (not to entries that
  were evicted: those may be wrong). When the store fails, `stale(key)` offers the last value,
  which no write has touched since (a write's eviction removes it from the stash too).
- Composed entries (`fill_composed`): a value built from other cached values, e.g. a whole
  feed page composed from a post list, post cores and author profiles. It names the keys it
  was built from, and evicting any of them evicts it too. It is stored only if nothing at all
  was evicted since the `epoch()` taken before its parts were read: a part may have changed
  meanwhile, and the entry must never outlive a write to a part.
- Refresh-ahead (`refresh_window` > 0): `expiring()` names the entries that were read since
  their fill and expire within the window, so the worker can fetch them again from L2 before
  they lapse (refresh.RefreshAhead). A refreshed value is a new fill, guarded by its
  own token (`begin_refresh`, apart from readers' so neither can drop the other's): no
  entry's TTL is ever extended, and an eviction during the refresh wins. Composed entries and
  entries living less than four windows are never refreshed.
- `timer` is injectable so tests can move time.
"""
import collections
import heapq
import sys
import threading
import time

import orjson

from .stash import Stash, StashingTLRU

MISSING = object()
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# No entry may take more than this share of the byte budget. A larger one would push out, on
# its own, hundreds of ordinary entries (a profile or post core is ~0.4 KiB, a 20-post page
# ~9 KiB), each of which then costs an L2 round trip or a rebuild, while the big page itself
# is rebuilt from parts that stay cached; it also leaves room for at least 64 of the largest.
MAX_ENTRY_SHARE = 64
READS_NOTED = 4096  # the most recent hits kept for the LRU order between two stores
PRUNE_FLOOR = 4096  # entries of the bookkeeping dicts below which they are not pruned (small L1s: less)


def json_size(key, value) -> int:
    """The encoded size of a value whose size the caller did not state: its JSON length."""
    try:
        return len(orjson.dumps(value))
    except TypeError:  # not JSON (a test's object): Python's own idea of its size
        return sys.getsizeof(value)


class LocalCache:
    def __init__(self, maxsize: int, ttl_for, timer=time.monotonic, refresh_window: float = 0,
                 max_bytes: int = DEFAULT_MAX_BYTES, sizeof=json_size):
        """ttl_for(key) -> seconds that key may live in L1; refresh_window: see `expiring`;
        sizeof(key, value) -> encoded size, for values stored without a stated size."""
        self._ttl_for = ttl_for
        self._timer = timer
        self._refresh_window = refresh_window
        self._sizeof = sizeof
        self._expires = {}  # key -> when its value expires, for entries that may be refreshed
        self._read = set()  # keys read since their fill (refresh candidates)
        self._by_expiry = []  # heap of (expires, key) per refreshable store, superseded ones included
        self._window = []  # (expires, key) taken off the heap: expiring within the refresh window
        self._refreshing = {}  # key -> token of a refresh in flight (apart from readers' fills)
        self._stash = Stash(max_bytes)
        self._cache = StashingTLRU(maxsize, max_bytes, self._expiry, timer, self._stash)
        self._live = self._cache.live
        self._reads = collections.deque(maxlen=READS_NOTED)  # hits the LRU order has not seen yet
        self._pending = {}
        self._dependents = {}  # key -> composed keys built from it
        # Sizes past which _expires and _dependents drop what L1 no longer holds: twice what
        # was left the last time (at least a floor), so that pruning costs O(1) per store and
        # both stay within about twice what L1 holds, however large L1_MAXSIZE is.
        self._expires_floor = min(PRUNE_FLOOR, 2 * maxsize)
        self._dependents_floor = min(PRUNE_FLOOR, 4 * maxsize)
        self._prune_expires_at, self._prune_dependents_at = self._expires_floor, self._dependents_floor
        self._evictions = 0  # evict/clear calls so far: the epoch of fill_composed
        self._lock = threading.Lock()
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // MAX_ENTRY_SHARE
        self.too_large = 0  # values not kept for their size, so far

    def _expiry(self, key, value, now):
        return now + self._ttl_for(key)

    def get(self, key):
        """The cached value, or MISSING.

        Without the lock (the hit path of every cached read): `_live` holds exactly what the
        cache holds, changed only under the lock, and a dict read is atomic, so a read that
        overlaps an eviction returns the value from before or nothing, as if it had run just
        before or after it. The LRU order learns of the read at the next store
        (`_note_reads`); a read noted late, or not at all when many thousands come between two
        stores, only makes that entry's eviction under pressure a little less exact."""
        entry = self._live.get(key)
        if entry is None or not self._timer() < entry[1]:
            return MISSING
        self._reads.append(key)
        if key in self._expires:  # a refresh-ahead candidate
            self._read.add(key)
        return entry[0]

    def peek(self, key):
        """The cached value, or MISSING, without counting as a read (no LRU or refresh-ahead
        effect)."""
        entry = self._live.get(key)
        return MISSING if entry is None or not self._timer() < entry[1] else entry[0]

    def begin(self, key) -> object:
        """Start a fill of key; returns the token `fill` needs.

        Fills of one key begun with no eviction in between share one token, so a token also
        tells whether two loads began on the same side of the key's last eviction.
        """
        with self._lock:
            token = self._pending.get(key)
            if token is None:
                token = self._pending[key] = object()
        return token

    def fill(self, key, token, value, size: int | None = None) -> bool:
        """Store value unless key was evicted since `begin` returned token, or it is too large
        to keep. size: its encoded size when known (else `sizeof` tells). True if stored."""
        with self._lock:
            return self._land(self._pending, key, token, value, size)

    def _land(self, tokens: dict, key, token, value, size) -> bool:
        # A fill lands only with the token still standing: an eviction withdraws it.
        if tokens.get(key) is not token:
            return False
        del tokens[key]
        return self._store(key, value, size)

    def _keep(self, key, value, size) -> bool:
        """Put value in the cache within the byte budget, unless it is too large to keep."""
        if size is None:
            size = self._sizeof(key, value)
        if size > self.max_entry_bytes:
            self.too_large += 1
            return False
        # Live entries and the stash share the budget: expired values go first (currsize
        # moves what has expired into the stash), then the LRU entries (cachetools, in put).
        over = self._cache.currsize + self._stash.currsize + size - self.max_bytes
        while over > 0 and self._stash:
            over -= self._stash.popitem()[1][1]
        self._note_reads()  # so that put drops the least recently used, hits included
        self._cache.put(key, value, size)
        return True

    def _note_reads(self):
        reads = self._reads
        self._cache.touch(reads.popleft() for _ in range(len(reads)))

    def _store(self, key, value, size) -> bool:
        if not self._keep(key, value, size):
            return False
        self._stash.pop(key, None)
        ttl = self._ttl_for(key)
        if self._refresh_window and ttl >= 4 * self._refresh_window:
            expires = self._expires[key] = self._timer() + ttl
            heapq.heappush(self._by_expiry, (expires, key))
            if len(self._by_expiry) > self._prune_expires_at:
                self._forget_gone_candidates()
                self._prune_expires_at = max(self._expires_floor, 2 * len(self._by_expiry))
        self._read.discard(key)  # due again only after a read of this value
        return True

    def begin_refresh(self, keys) -> dict:
        """Start refreshes of keys: {key: token} for `fill_refreshed`. Refresh tokens are
        apart from readers' (`begin`), so a refresh never takes over or drops a reader's fill;
        an eviction withdraws both."""
        with self._lock:
            tokens = {key: object() for key in keys}
            self._refreshing.update(tokens)
            return tokens

    def fill_refreshed(self, key, token, value, size: int | None = None) -> bool:
        """Store a refreshed value unless key was evicted since `begin_refresh` (or it is too
        large to keep; size as in `fill`)."""
        with self._lock:
            return self._land(self._refreshing, key, token, value, size)

    def end_refresh(self, tokens: dict):
        """Drop what is left of refreshes begun with `begin_refresh` (those that did not land)."""
        with self._lock:
            for key, token in tokens.items():
                if self._refreshing.get(key) is token:
                    del self._refreshing[key]

    def expiring(self) -> list:
        """The keys worth fetching again now: stored by a fill or a refresh, read since, expiring
        within the refresh window. Each is named once; only a new read makes it due again.
        Costs what expires within the window, not what L1 holds."""
        due = []
        with self._lock:
            now = self._timer()
            while self._by_expiry and self._by_expiry[0][0] - now <= self._refresh_window:
                self._window.append(heapq.heappop(self._by_expiry))
            window = []
            for expires, key in self._window:
                if self._expires.get(key) != expires:
                    continue  # stored again since (its newer expiry stands for it), or evicted
                if expires <= now or key not in self._cache:  # expired, or pushed out meanwhile
                    del self._expires[key]
                    self._read.discard(key)
                    continue
                window.append((expires, key))
                if key in self._read:  # get() adds to it without the lock: set operations are atomic
                    self._read.discard(key)
                    due.append(key)
            self._window = window
        return sorted(due)

    def _forget_gone_candidates(self):
        # Entries also leave by expiry and LRU without telling us: keep what is still cached.
        self._expires = {k: e for k, e in self._expires.items() if k in self._cache}
        self._read &= self._expires.keys()
        self._by_expiry = [(e, k) for k, e in self._expires.items()]
        heapq.heapify(self._by_expiry)
        self._window = []  # back on the heap

    def stale(self, key):
        """The value key had when it expired (MISSING if none): for stale-if-error only."""
        with self._lock:
            self._cache.expire()
            return self._stash.get(key, (MISSING,))[0]

    def abandon(self, key, token):
        """Give up a fill (its load failed)."""
        with self._lock:
            if self._pending.get(key) is token:
                del self._pending[key]

    def evict(self, keys=(), prefixes=()) -> int:
        """Remove keys and every key under prefixes, with their fills in flight."""
        removed = 0
        with self._lock:
            # Move what has expired into the stash first, where the eviction removes it too;
            # what expires after this is removed by discard() and held keys(), expired or not
            # (an evicted value must never be offered as stale).
            self._cache.expire()
            targets = list(keys)
            if prefixes:
                prefixes = tuple(prefixes)
                targets += [k for k in self._cache.held_keys() if k.startswith(prefixes)]
                targets += [k for k in self._pending if k.startswith(prefixes)]
                targets += [k for k in self._refreshing if k.startswith(prefixes)]
                targets += [k for k in self._stash.keys() if k.startswith(prefixes)]
                targets += [k for k in self._dependents if k.startswith(prefixes)]
            self._evictions += 1
            for key in targets:
                self._pending.pop(key, None)
                self._refreshing.pop(key, None)
                self._expires.pop(key, None)
                self._read.discard(key)
                removed += self._cache.discard(key)
                self._stash.pop(key, None)
                for composed in self._dependents.pop(key, ()):
                    removed += self._cache.discard(composed)
                    self._stash.pop(composed, None)
        return removed

    def epoch(self) -> int:
        """Take before reading the parts of a composed value (see fill_composed)."""
        with self._lock:
            return self._evictions

    def fill_composed(self, key, value, parts, epoch: int, size: int | None = None) -> bool:
        """Store a value composed from the keys `parts` unless anything was evicted since
        `epoch` (or it is too large to keep; size as in `fill`); evicting any part later
        evicts it. True if stored."""
        if self._evictions != epoch:  # refused anyway (checked again under the lock)
            return False
        if size is None:
            size = self._sizeof(key, value)  # outside the lock: a page takes tens of µs
        with self._lock:
            if self._evictions != epoch or not self._keep(key, value, size):
                return False
            for part in parts:
                self._dependents.setdefault(part, set()).add(key)
            if len(self._dependents) > self._prune_dependents_at:
                self._forget_gone_dependents()
                self._prune_dependents_at = max(self._dependents_floor, 2 * len(self._dependents))
            return True

    def _forget_gone_dependents(self):
        # Composed entries also leave by expiry and LRU; drop what points only at those.
        live = set(self._cache.keys())
        for part in list(self._dependents):
            kept = self._dependents[part] & live
            if kept:
                self._dependents[part] = kept
            else:
                del self._dependents[part]

    def clear(self):
        """Drop everything, fills in flight included."""
        with self._lock:
            self._evictions += 1
            self._pending.clear()
            self._refreshing.clear()
            self._cache.clear()
            self._stash.clear()
            self._dependents.clear()
            self._expires.clear()
            self._read.clear()
            self._by_expiry.clear()
            self._window.clear()

    def __len__(self):
        with self._lock:
            return len(self._cache)

    @property
    def bytes(self) -> int:
        """Encoded bytes held, live entries and stash together (at most max_bytes)."""
        with self._lock:
            return self._cache.currsize + self._stash.currsize
