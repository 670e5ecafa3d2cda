"""The per-worker thread that applies other workers' invalidations to this worker's L1.

A session: subscribe, register in the `Registry` (writers wait for registered listeners only),
clear L1 (whatever was published while we were away is lost), then loop:
- each message: evict its keys and prefixes, then acknowledge to its writer;
- every `ping_interval`: PING with the send time as payload; each pong renews the trust lease
  from that send time (trust.py explains why that is safe) and the registration is renewed
  every second on the acknowledging connection;
- no pong within `silence_timeout` of a PING, a sequence gap, a renewed subscription or any
  error ends the session: trust is withdrawn and L1 cleared before anything else.

It never dies: every error is logged, backed off, and followed by a new session. On a Redis
Cluster it subscribes on the master that owns the channel's slot and ends the session when
another node takes the slot over (`node_check`).
"""
import logging
import math
import os
import threading
import time
from collections import OrderedDict

import orjson
from redis.backoff import EqualJitterBackoff

from ...infra.redis_access import REDIS_ERRORS
from ..breaker import describe
from .publisher import ACKNOWLEDGE, pending_keys, pending_ttl_ms

log = logging.getLogger(__name__)

REGISTER_EVERY = 1.0  # seconds between renewals of the registration (its TTL is 10 s)


class Listener(threading.Thread):
    def __init__(self, connect, channel, ack_prefix, registry, origin, local, trust, stats, *,
                 ack_client, ping_interval=None, silence_timeout=None, node_check=None,
                 node_check_interval=1.0):
        """connect() -> a new redis.Redis for this listener's subscription alone."""
        super().__init__(name="feedapp-invalidation-listener", daemon=True)
        self._connect = connect
        self._channel = channel
        self._ack_prefix = ack_prefix
        self._registry = registry
        self.origin = origin
        self._local = local
        self._trust = trust
        self._stats = stats
        self._ack_client = ack_client
        self._acknowledge = ack_client.register_script(ACKNOWLEDGE)
        # Pings well within the lease keep the trust continuous on a healthy connection.
        self._ping_interval = ping_interval or trust.lease / 4
        self._silence_timeout = silence_timeout or trust.lease / 2
        self._node_check = node_check
        self._node_check_interval = node_check_interval
        self._clock = trust.clock
        self._stopping = threading.Event()
        self._backoff = EqualJitterBackoff(cap=2.0, base=0.05)
        self._last_seq = OrderedDict()
        self._subscribed = threading.Event()
        self.sessions = 0
        self._lost_at = None

    @property
    def live(self) -> bool:
        """True while this worker's L1 is trusted."""
        return self._trust.l1()

    def wait_live(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.live:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self):
        self._stopping.set()

    def run(self):
        failures = 0
        while not self._stopping.is_set():
            sessions = self.sessions
            try:
                self._session()
                failures = 0
            except Exception as err:  # noqa: BLE001 - the listener must never die
                # Back off on repeated failures to connect, not after a session that worked.
                failures = 1 if self.sessions > sessions else failures + 1
                if self._lost_at is None:
                    self._lost_at = time.monotonic()
                log.warning("invalidation listener of worker %d lost its subscription to %r (%s; attempt %d); "
                            "L1 cleared and bypassed until it resubscribes", os.getpid(), self._channel,
                            describe(err), failures)
            self._stopping.wait(self._backoff.compute(failures) if failures else 0.05)

    def _session(self):
        client = self._connect()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self._channel)
            self._await_subscribed(pubsub)
            self._check_node(client)
            self._registry.register(self.origin)
            self._local.clear()  # whatever was sent while we were away is lost: start empty
            self._last_seq.clear()
            self.sessions += 1
            self._stats.count("listener.subscriptions")
            if self._lost_at is not None:
                log.warning("invalidation listener of worker %d resubscribed after %.2f s",
                            os.getpid(), time.monotonic() - self._lost_at)
                self._lost_at = None
            self._listen(pubsub, client)
        finally:
            self._trust.stream_lost()  # before L1 is cleared: no read may use it from here on
            self._local.clear()
            self._registry.deregister(self.origin)
            pubsub.close()
            client.close()

    def _check_node(self, client):
        if self._node_check is not None and not self._node_check(client):
            raise ConnectionError("the channel's slot is served by another node now")

    def _await_subscribed(self, pubsub):
        # Generous: a busy worker must not take a slow confirmation for a lost connection.
        deadline = time.monotonic() + max(2.0, self._silence_timeout)
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.2)
            if message and message["type"] == "subscribe":
                return
        raise TimeoutError("no subscribe confirmation")

    def _listen(self, pubsub, client):
        registered = checked = self._clock()
        last_ping = -math.inf  # the first PING goes out at once
        unanswered = []  # send times of the pings not answered yet, oldest first
        while not self._stopping.is_set():
            now = self._clock()
            if now - registered >= REGISTER_EVERY:
                self._registry.register(self.origin)
                registered = now
            if now - checked >= self._node_check_interval:
                self._check_node(client)
                checked = now
            # One PING per interval, not one per pong: a PING always in flight would keep this
            # thread, its worker's GIL and Redis busy for nothing.
            if now - last_ping >= self._ping_interval:
                pubsub.ping(repr(now))
                unanswered.append(now)
                last_ping = now
            if unanswered and now - unanswered[0] > self._silence_timeout:
                raise TimeoutError("subscriber connection went silent")
            message = pubsub.get_message(timeout=min(self._ping_interval, 0.05))
            if message is None:
                continue
            if message["type"] == "message":
                self._apply(message["data"])
            elif message["type"] == "pong":
                self._pong(message["data"], unanswered)
            elif message["type"] == "subscribe":
                # The client reconnected and resubscribed by itself: messages may be lost.
                raise ConnectionError("subscription was silently renewed")

    def _pong(self, data, unanswered):
        try:
            sent_at = float(data)
        except (TypeError, ValueError):
            return  # not one of ours (e.g. redis-py's own health check)
        while unanswered and unanswered[0] <= sent_at:
            unanswered.pop(0)
        self._trust.stream_renewed(sent_at)

    def _apply(self, data: bytes):
        try:
            message = orjson.loads(data)
            keys, prefixes = message["keys"], message["prefixes"]
            origin, seq = message["origin"], message["seq"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring malformed invalidation message")
            return
        if origin == self.origin:
            return  # this worker's own write evicted its L1 already, and does not wait for us
        self._local.evict(keys, prefixes)
        self._stats.count("invalidations.received")
        if self._gap(origin, seq):
            log.warning("invalidation gap from %s (got %s): clearing L1", origin, seq)
            self._stats.count("invalidations.gaps")
            self._local.clear()
        self._ack(origin, seq)

    def _gap(self, origin, seq) -> bool:
        last = self._last_seq.pop(origin, None)
        self._last_seq[origin] = seq
        if len(self._last_seq) > 1000:
            self._last_seq.popitem(last=False)
        return last is not None and seq != last + 1

    def _ack(self, origin, seq):
        """One script: the writer waits for the listener that acknowledges last (publisher.py)."""
        try:
            self._acknowledge(keys=pending_keys(self._ack_prefix, origin, seq),
                              args=[self.origin, pending_ttl_ms(self._trust.lease)])
        except REDIS_ERRORS as err:  # applied all the same; its writer waits out the lease
            log.warning("could not acknowledge invalidation %s:%s: %r", origin, seq, err)
