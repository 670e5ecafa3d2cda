"""L2: Redis, shared by every worker of every app server.

Values are stored with TTLs (docs/design.md, rule 10). A reader that misses takes a short lease
(`SET lease NX PX`); a write's invalidation deletes value *and* lease; the reader's fill is a
Lua script that stores the value only while its own lease is still there, so a value loaded
before a write can never be stored after that write's invalidation (docs/design.md, rule 4).

Every call goes through a circuit breaker: when Redis fails, calls raise `L2Unavailable` at
once for a backoff period instead of waiting on a dead server, and callers skip L2.

Redis Cluster: a value and its lease share a hash tag (keys.py), so each script touches one
slot; calls on several keys send one command or script per slot group in one `Batch`
(feedapp/infra/redis_access.py). On a single Redis that is one group: the commands a plain client sends.
"""
import secrets

from ..infra.redis_access import REDIS_ERRORS, Batch, Script, slot_groups
from .breaker import CircuitBreaker

LEASE_SUFFIX = ":lease"

# KEYS[1] value, KEYS[2] lease; ARGV[1] token, ARGV[2] payload, ARGV[3] ttl (ms)
FILL_IF_LEASED = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# KEYS[1] value, KEYS[2] lease; ARGV[1] token, ARGV[2] lease ms. The value if it is there by
# now (a fill may have landed since the reader's GET), else the lease if it is free.
# Returns {1, value} | {2, ""} (lease granted) | {0, ""} (another reader holds it).
LEASE_IF_MISSING = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, ''} end
return {0, ''}
"""

# KEYS[1] lease; ARGV[1] token: delete the lease only if it is still ours.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Insert one entry into sorted (newest first) post lists, where they exist, and cap them.
# A list value is "<meta>\n<flag><entries>", every entry exactly ARGV[3] bytes, sorted
# descending; flag "C" means the list holds the whole listing, "P" a prefix of it.
# Every key's lease is deleted too: a fill that started before this write must not land.
# KEYS[2i-1] list, KEYS[2i] its lease; ARGV[1] entry, ARGV[2] cap (entries), ARGV[3] width
INSERT_ENTRY = """
local entry, cap, width = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local updated = 0
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i + 1])
  local v = redis.call('GET', KEYS[i])
  if v then
    local nl = string.find(v, '\\n', 1, true)
    local meta, flag, ids = string.sub(v, 1, nl), string.sub(v, nl + 1, nl + 1), string.sub(v, nl + 2)
    local pos, duplicate = 1, false
    while pos <= #ids do
      local e = string.sub(ids, pos, pos + width - 1)
      if e == entry then duplicate = true break end
      if e < entry then break end
      pos = pos + width
    end
    if not duplicate then
      ids = string.sub(ids, 1, pos - 1) .. entry .. string.sub(ids, pos)
      if #ids > cap * width then
        ids = string.sub(ids, 1, cap * width)
        flag = 'P'
      end
      redis.call('SET', KEYS[i], meta .. flag .. ids, 'KEEPTTL')
      updated = updated + 1
    end
  end
end
return updated
"""


class L2Unavailable(Exception):
    """Redis is failing or the breaker is open: skip L2 for this call."""


def lease_key(key: str) -> str:
    return key + LEASE_SUFFIX


class RemoteCache:
    def __init__(self, redis, breaker: CircuitBreaker | None = None, lease_ms: int = 2000):
        self.redis = redis
        self.breaker = breaker or CircuitBreaker()
        self.lease_ms = lease_ms
        self._fill = Script(FILL_IF_LEASED)
        self._insert = Script(INSERT_ENTRY)
        self._lease = Script(LEASE_IF_MISSING)
        self._release = Script(RELEASE_LEASE)

    def _call(self, operation, *args, always=False, **kwargs):
        """Run operation on Redis through the breaker. `always`: try even while it is open
        (invalidations: skipping one would leave stale data for every worker)."""
        if not always and not self.breaker.allow():
            raise L2Unavailable("circuit open")
        try:
            result = operation(*args, **kwargs)
        except REDIS_ERRORS as err:
            self.breaker.failure(err)
            raise L2Unavailable(str(err)) from err
        self.breaker.success()
        return result

    def get(self, key: str):
        """The stored bytes, or None."""
        return self._call(self.redis.get, key)

    def get_many(self, keys: list) -> list:
        """The stored bytes (or None) of each key, in order: one MGET per slot group."""
        if not keys:
            return []
        groups = slot_groups(self.redis, keys)

        def run():
            batch = Batch(self.redis)
            for group in groups:
                batch.command("MGET", *group)
            return batch.execute()

        found = {}
        for group, values in zip(groups, self._call(run)):
            found.update(zip(group, values))
        return [found[key] for key in keys]

    def lease(self, key: str) -> tuple:
        """After a miss: (None, value) if a fill landed meanwhile, else (token, None) with the
        key's fill lease, or (None, None) when another reader holds it."""
        return self.lease_many([key])[key]

    def lease_many(self, keys: list) -> dict:
        """lease() for several keys in one round trip: {key: (token, value)}."""
        if not keys:
            return {}
        tokens = {key: secrets.token_hex(8) for key in keys}

        def run():
            batch = Batch(self.redis)
            for key, token in tokens.items():
                batch.script(self._lease, [key, lease_key(key)], [token, self.lease_ms])
            return batch.execute()

        replies = self._call(run)
        return {key: _lease_outcome(tokens[key], reply) for key, reply in zip(keys, replies)}

    def fill(self, key: str, token: str, payload: bytes, ttl_ms: int) -> bool:
        """Store payload if our lease on key still stands (no write came in between)."""
        return self.fill_many([(key, token, payload, ttl_ms)]) == 1

    def fill_many(self, fills: list) -> int:
        """fill() for several (key, token, payload, ttl_ms) in one round trip."""
        def run():
            batch = Batch(self.redis)
            for key, token, payload, ttl_ms in fills:
                batch.script(self._fill, [key, lease_key(key)], [token, payload, ttl_ms])
            return batch.execute()

        return sum(1 for ok in self._call(run) if ok)

    def delete(self, keys) -> int:
        """Delete values and their leases; the number of values deleted."""
        keys = list(keys)
        if not keys:
            return 0
        def run():
            values = self._queue_deletes(batch := Batch(self.redis), keys)
            self._queue_deletes(batch, [lease_key(k) for k in keys])
            return sum(batch.execute()[:values])
        return self._call(run, always=True)

    def delete_prefix(self, prefix: str, batch: int = 500) -> int:
        """Delete every key under prefix (SCAN, on every primary of a cluster; for the rare
        admin invalidation only)."""
        def run():
            deleted, chunk = 0, []
            for key in self.redis.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
                chunk.append(key)
                if len(chunk) >= batch:
                    deleted += self._delete_keys(chunk)
                    chunk = []
            return deleted + self._delete_keys(chunk)
        return self._call(run, always=True)

    def _delete_keys(self, keys) -> int:
        batch = Batch(self.redis)
        self._queue_deletes(batch, keys)
        return sum(batch.execute())

    def _queue_deletes(self, batch, keys) -> int:
        """Add one DEL per slot group of keys to batch; how many it added."""
        groups = slot_groups(self.redis, keys)
        for group in groups:
            batch.command("DEL", *group)
        return len(groups)

    def insert_entry(self, keys, entry: str, cap: int) -> int:
        """Write an entry through to the cached post lists among keys (see INSERT_ENTRY)."""
        groups = slot_groups(self.redis, keys)
        if not groups:
            return 0

        def run():
            batch = Batch(self.redis)
            for group in groups:
                flat = [k for key in group for k in (key, lease_key(key))]
                batch.script(self._insert, flat, [entry, cap, len(entry)])
            return sum(batch.execute())
        return self._call(run, always=True)

    def release(self, leases: dict):
        """Give back leases ({key: token}) whose load failed, so others need not wait."""
        def run():
            batch = Batch(self.redis)
            for key, token in leases.items():
                batch.script(self._release, [lease_key(key)], [token])
            return batch.execute()
        self._call(run)


def _lease_outcome(token, reply) -> tuple:
    status, value = int(reply[0]), reply[1]
    if status == 1:
        return None, value
    return (token if status == 2 else None), None


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
