"""Telling every worker's L1 to evict, and waiting until each has done so or stopped trusting.

One channel. A message names the keys and prefixes to evict, its origin (the writing worker)
and that origin's sequence number. Listeners register themselves in a sorted set (`Registry`)
while they are subscribed; PUBLISH and the read of the registry are one Lua script, so the
writer knows exactly whose acknowledgement to wait for: every registered listener but its own
(the writer evicted its own L1 already). A subscriber that is not a listener (an operator's
`SUBSCRIBE`, a monitoring tool) is not waited for.

The same script records those ids in a per-message set. Each listener acknowledges with one
script that removes its own id from the set; the one that empties it pushes to the message's
"done" list, so the writer's wait is a single BLPOP however many listeners there are, and an
acknowledgement only counts for the listener that sent it. The wait ends when the set is
empty or one trust lease after PUBLISH returned, when any listener that has not acknowledged
has stopped trusting its L1 (see trust.py). So `publish` returning means "applied or
untrusted everywhere", never "probably".

Redis Cluster: the registry and every message's pending set and done list share the channel
name's hash tag, so the scripts run on the master that owns the channel's slot, where every
listener subscribes (feedapp/infra/redis_access.py). When that node cannot be reached, the message goes out
through another node and the writer waits the whole lease.
"""
import itertools
import logging
import threading
import time

import orjson

from ...infra.redis_access import REDIS_ERRORS, Batch, Script, is_cluster
from ...infra.redis_access import publish as publish_on_any_node

log = logging.getLogger(__name__)

ACK_POLL = 0.25  # seconds, at most, that one BLPOP of the acknowledgements blocks


def pending_ttl_ms(lease: float) -> int:
    """How long a message's pending set and done list live should their writer never read
    them: well beyond the writer's wait (one lease)."""
    return max(10_000, int(2000 * lease))


# KEYS[1] registry, KEYS[2] the message's pending set; ARGV[1] channel, ARGV[2] message,
# ARGV[3] the writer's listener id, ARGV[4] the set's ttl (ms). The listeners to wait for
# (every registered one but the writer's) go into the set before the message goes out.
# Returns {receivers, [registered listener ids]}.
PUBLISH_TO_REGISTERED = """
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now[1] * 1000 + math.floor(now[2] / 1000))
local registered = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(registered) do
  if id ~= ARGV[3] then redis.call('SADD', KEYS[2], id) end
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local receivers = redis.call('PUBLISH', ARGV[1], ARGV[2])
return {receivers, registered}
"""

# KEYS[1] the message's pending set, KEYS[2] its done list; ARGV[1] listener id, ARGV[2] ttl
# (ms). The listener that empties the set wakes the writer; one not in it (registered after
# the message, or acknowledging after the writer gave up) changes nothing.
ACKNOWLEDGE = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
"""


def pending_keys(ack_prefix: str, origin: str, seq: int) -> tuple:
    """(pending set, done list) of one message; both in the channel's hash slot."""
    pending = f"{ack_prefix}{origin}:{seq}"
    return pending, f"{pending}:done"


# KEYS[1] registry; ARGV[1] listener id, ARGV[2] ttl (ms).
REGISTER = """
local now = redis.call('TIME')
redis.call('ZADD', KEYS[1], now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""


class Registry:
    """The listeners that writers wait for: each renews its entry while it is subscribed."""

    TTL_MS = 10_000  # far longer than any trust lease: an entry never expires under a live listener

    def __init__(self, redis, key: str):
        self._redis = redis
        self.key = key
        self._register = Script(REGISTER)

    def register(self, listener_id: str):
        Batch(self._redis).script(self._register, [self.key], [listener_id, self.TTL_MS]).execute()

    def deregister(self, listener_id: str):
        try:
            self._redis.zrem(self.key, listener_id)
        except REDIS_ERRORS:
            pass  # the entry expires; writers wait one lease for it meanwhile


class Publisher:
    def __init__(self, redis, channel: str, ack_prefix: str, registry: Registry, origin: str,
                 stats, lease: float, clock=time.monotonic):
        self._redis = redis
        self._channel = channel
        self._ack_prefix = ack_prefix
        self._registry = registry
        self.origin = origin
        self._stats = stats
        self._lease = lease
        self._clock = clock
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._script = Script(PUBLISH_TO_REGISTERED)

    def publish(self, keys=(), prefixes=()) -> bool:
        """Tell every worker to evict; return once each registered listener acknowledged
        (True) or one lease has passed (False: those that did not stopped trusting).

        Raises a Redis error when the message could not be sent."""
        body = {"origin": self.origin, "keys": list(keys), "prefixes": list(prefixes)}
        # Sequence and PUBLISH under one lock, so each origin's messages reach Redis in order.
        with self._lock:
            seq = body["seq"] = next(self._seq)
            pending, done = pending_keys(self._ack_prefix, self.origin, seq)
            expected = self._send(pending, orjson.dumps(body))
        deadline = self._clock() + self._lease
        self._stats.count("invalidations.published")
        return self._await_acks(pending, done, expected, deadline)

    def _send(self, pending: str, message: bytes):
        """PUBLISH; the ids of the listeners to wait for, or None when they are unknown."""
        try:
            batch = Batch(self._redis).script(self._script, [self._registry.key, pending],
                                              [self._channel, message, self.origin, pending_ttl_ms(self._lease)])
            _, registered = batch.execute()[0]
        except REDIS_ERRORS:
            if not is_cluster(self._redis):
                raise
            publish_on_any_node(self._redis, self._channel, message)  # raises if no node takes it
            self._stats.count("invalidations.receivers_unknown")
            return None
        return {r.decode() if isinstance(r, bytes) else r for r in registered} - {self.origin}

    def _await_acks(self, pending: str, done: str, expected, deadline: float) -> bool:
        acked = 0
        try:
            while expected is None or expected:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self._stats.count("invalidations.lease_waits")
                    if expected is not None:
                        missing = self._missing(pending, done, expected)
                        acked = len(expected - missing)
                        log.warning("invalidation %s: no acknowledgement from %s within the %.2f s lease; "
                                    "they stopped trusting their L1", pending, sorted(missing), self._lease)
                    return False
                # Short blocking waits: a BLPOP must answer well within the socket timeout; and
                # never under 10 ms, which Redis would round down to 0, "block forever".
                if self._wait_done(done, max(0.01, min(remaining, ACK_POLL))) and expected is not None:
                    acked = len(expected)
                    return True  # the done list went with its only entry, the set with its last id
            return True
        except REDIS_ERRORS:
            # The message went out but its acknowledgements cannot be read (e.g. a cluster in a
            # failover refuses keyed commands): a lease after PUBLISH, everyone has applied it
            # or stopped trusting.
            self._stats.count("invalidations.ack_failures")
            time.sleep(max(0.0, deadline - self._clock()))
            return False
        finally:
            self._stats.count("invalidations.acknowledged", acked)

    def _wait_done(self, done: str, timeout: float) -> bool:
        """Whether the last expected listener acknowledged, waiting up to `timeout` for it."""
        return self._redis.blpop([done], timeout) is not None

    def _missing(self, pending: str, done: str, expected: set) -> set:
        """The listeners that did not acknowledge (all of `expected` when Redis cannot say);
        the message's keys go with the answer."""
        try:
            batch = Batch(self._redis).command("SMEMBERS", pending).command("EXISTS", done)
            missing, all_acked = batch.command("DEL", pending, done).execute()[:2]
        except REDIS_ERRORS:
            return set(expected)  # both keys expire (pending_ttl_ms)
        if not missing and not all_acked:
            return set(expected)  # the set is gone (expired, or evicted by Redis): unknown
        return {m.decode() if isinstance(m, bytes) else m for m in missing}
