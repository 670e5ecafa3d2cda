"""Telling every worker's L1 to evict, and waiting until each has done so or stopped trusting.

One channel. A message names the keys and prefixes to evict, its origin (the writing worker)
and that origin's sequence number. Listeners register themselves in a sorted set (`Registry`)
while they are subscribed; PUBLISH and the read of the registry are one Lua script, so the
writer knows exactly whose acknowledgement to wait for: every registered listener but its own
(the writer evicted its own L1 already). A subscriber that is not a listener (an operator's
`SUBSCRIBE`, a monitoring tool) is not waited for.

The wait ends when every one of them has acknowledged (RPUSH of its id to a per-message list,
read with BLPOP, and whatever else is in the list taken in the same round trip) or one trust
lease after PUBLISH returned, when any listener that has not acknowledged has stopped trusting
its L1 (see trust.py). So `publish` returning means "applied or untrusted everywhere", never
"probably".

Redis Cluster: the registry and the acknowledgement lists share the channel name's hash tag,
so the script runs on the master that owns the channel's slot, where every listener
subscribes (feedapp/infra/redis_access.py). When that node cannot be reached, the message goes out
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

# KEYS[1] registry; ARGV[1] channel, ARGV[2] message. {receivers, [registered listener ids]}.
PUBLISH_TO_REGISTERED = """
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now[1] * 1000 + math.floor(now[2] / 1000))
local receivers = redis.call('PUBLISH', ARGV[1], ARGV[2])
return {receivers, redis.call('ZRANGE', KEYS[1], 0, -1)}
"""

# KEYS[1] acknowledgement list: every acknowledgement in it, taken (the list goes with them).
TAKE_ACKS = """
local acks = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return acks
"""

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
        self._take = Script(TAKE_ACKS)

    def publish(self, keys=(), prefixes=()) -> bool:
        """Tell every worker to evict; return once each registered listener acknowledged
        (True) or one lease has passed (False: those that did not stopped trusting).

        Raises a Redis error when the message could not be sent."""
        body = {"origin": self.origin, "keys": list(keys), "prefixes": list(prefixes)}
        # Sequence and PUBLISH under one lock, so each origin's messages reach Redis in order.
        with self._lock:
            seq = body["seq"] = next(self._seq)
            expected = self._send(orjson.dumps(body))
        deadline = self._clock() + self._lease
        self._stats.count("invalidations.published")
        return self._await_acks(f"{self._ack_prefix}{self.origin}:{seq}", expected, deadline)

    def _send(self, message: bytes):
        """PUBLISH; the ids of the listeners to wait for, or None when they are unknown."""
        try:
            batch = Batch(self._redis).script(self._script, [self._registry.key], [self._channel, message])
            _, registered = batch.execute()[0]
        except REDIS_ERRORS:
            if not is_cluster(self._redis):
                raise
            publish_on_any_node(self._redis, self._channel, message)  # raises if no node takes it
            self._stats.count("invalidations.receivers_unknown")
            return None
        return {r.decode() if isinstance(r, bytes) else r for r in registered} - {self.origin}

    def _await_acks(self, ack_key: str, expected, deadline: float) -> bool:
        acked = set()
        try:
            while expected is None or not expected <= acked:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self._stats.count("invalidations.lease_waits")
                    if expected is not None:
                        log.warning("invalidation %s: no acknowledgement from %s within the %.2f s lease; "
                                    "they stopped trusting their L1", ack_key, sorted(expected - acked), self._lease)
                    self._delete(ack_key)
                    return False
                # Short blocking waits: a BLPOP must answer well within the socket timeout; and
                # never under 10 ms, which Redis would round down to 0, "block forever".
                acked.update(self._next_acks(ack_key, max(0.01, min(remaining, ACK_POLL))))
            # Every acknowledgement was taken, so the list is gone with the last of them.
            return True
        except REDIS_ERRORS:
            # The message went out but its acknowledgements cannot be read (e.g. a cluster in a
            # failover refuses keyed commands): a lease after PUBLISH, everyone has applied it
            # or stopped trusting.
            self._stats.count("invalidations.ack_failures")
            time.sleep(max(0.0, deadline - self._clock()))
            return False
        finally:
            self._stats.count("invalidations.acknowledged", len(acked))

    def _next_acks(self, ack_key: str, timeout: float) -> list:
        """Listener ids that acknowledged: waits up to `timeout` for the first, then takes
        every other one already there in the same round trip (listeners answer together)."""
        first, rest = Batch(self._redis).command("BLPOP", ack_key, timeout).script(self._take, [ack_key]).execute()
        ids = ([first[1]] if first else []) + list(rest)
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    def _delete(self, ack_key):
        try:
            self._redis.delete(ack_key)
        except REDIS_ERRORS:
            pass  # it expires (the listeners set a TTL on it)
