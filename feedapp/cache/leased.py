"""L2 as the cascade reads it: under leases, so that one worker loads each cold key.

`lookup(keys)` reads L2 with one MGET and takes the lease of each key that missed; a key whose
lease another worker holds is waited for (its fill), and taken over if that worker lets the
lease go without a fill (docs/design.md, rule 8). `load_and_fill` loads from the store what
nobody filled and fills L2 where it holds the lease, checked in Lua, so a value read before a
write's invalidation is never stored after it (rule 4). A loader's None ("no such document")
is stored as ABSENT_BYTES. Any Redis failure is a miss (rule 9).
"""
import time

from .local import MISSING
from .remote import L2Unavailable

ABSENT_BYTES = b""  # L2's marker for "the store has no such document": no encoded value is empty


class LeasedL2:
    def __init__(self, *, keys, stats, policy, trust, remote=None, lease_wait: float = 3.0):
        """remote: the RemoteCache (None: no L2, every key misses); policy and lease_wait as
        in TieredCache; trust: L2 is read only while `trust.l2_until` is ahead."""
        self.keys = keys
        self.stats = stats
        self.policy = policy
        self.trust = trust
        self._clock = trust.clock
        self.remote = remote
        self.lease_wait = lease_wait

    def lookup(self, keys, sizes=None) -> tuple:
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
            value = self.decode(key, raws.get(key))
            if value is MISSING:
                self.stats.count(f"l2.misses.{self.keys.family(key)}")
            else:
                self.stats.count(f"l2.hits.{self.keys.family(key)}")
                found[key] = value
                if sizes is not None:
                    sizes[key] = len(raws[key])
        return found, {k: t for k, t in leases.items() if t is not None}

    def load_and_fill(self, keys: dict, leases: dict, loader, sizes=None) -> dict:
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

    def encode(self, key, value) -> bytes:
        """What L2 stores for value under key (None: "absent")."""
        return ABSENT_BYTES if value is None else self.policy(self.keys.family(key))[0].encode(value)

    def decode(self, key, raw):
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
