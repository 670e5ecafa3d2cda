"""Cross-worker L1 invalidation over Redis pub/sub, with acknowledgements.

One channel. A message carries keys and prefixes to evict, its origin (the writing worker)
and that origin's sequence number. `Publisher.publish` returns once every subscribed worker
has evicted: each listener acknowledges after evicting (RPUSH to a per-message list), and the
writer waits (BLPOP) for as many acknowledgements as PUBLISH reported receivers, bounded by a
short timeout that is counted.

A message flagged `r` (resync) says that the write's L2 invalidation failed (it waits in the
outbox). On a single Redis that means Redis is down and no listener hears it anyway; on a
Redis Cluster one master may be down while the channel's master is up, and the promoted
replica would serve the old values: each listener then goes untrusted and resubscribes, and
its worker drains the outbox into L2 before it trusts L1 or L2 again.

Redis Cluster: listeners subscribe on, and the publisher publishes to, the master that owns
the channel name's slot (feedapp/redis_client.py), so PUBLISH's reply counts every listener
(a cluster forwards PUBLISH to every node, but each node counts only its own subscribers);
the acknowledgement lists share that slot.

`Listener` is one thread per worker. It blocks on its socket (get_message with a timeout, no
spinning), pings when the channel has been quiet, and on any disconnect, failed health check
or sequence gap it clears L1 and marks L1 untrusted until it is subscribed again (pub/sub is
at-most-once, so nothing else can tell what was missed). It never dies: every error is
logged, backed off, and followed by a reconnect.
"""
import itertools
import logging
import os
import socket
import threading
import time
from collections import OrderedDict

import orjson
from redis.backoff import EqualJitterBackoff

from .cache.breaker import describe
from .redis_client import REDIS_ERRORS
from .redis_client import publish as publish_to_channel

log = logging.getLogger(__name__)

ACK_POLL = 0.25  # seconds, at most, that one BLPOP of the acknowledgements blocks


class ResyncRequested(Exception):
    """A writer could not invalidate L2: end this session, drain the outbox, resubscribe."""


def worker_origin() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Publisher:
    def __init__(self, redis_client, channel: str, ack_prefix: str, origin: str, stats, ack_timeout: float = 0.5):
        self._redis = redis_client
        self._channel = channel
        self._ack_prefix = ack_prefix
        self.origin = origin
        self._stats = stats
        self._ack_timeout = ack_timeout
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def publish(self, keys=(), prefixes=(), resync=False) -> bool:
        """Tell every worker to evict; True once all of them acknowledged in time.
        resync: the L2 invalidation failed, so every worker must also drain the outbox
        before it trusts its caches again (see the module docstring).

        Raises RedisError when Redis cannot be reached (listeners then clear their L1s).
        """
        body = {"o": self.origin, "k": list(keys), "p": list(prefixes)}
        if resync:
            body["r"] = 1
        # Sequence and PUBLISH under one lock, so each origin's messages reach Redis in order.
        with self._lock:
            seq = body["s"] = next(self._seq)
            receivers = publish_to_channel(self._redis, self._channel, orjson.dumps(body))
        self._stats.count("invalidations.published")
        return self._await_acks(f"{self._ack_prefix}{self.origin}:{seq}", receivers)

    def _await_acks(self, ack_key: str, expected: int | None) -> bool:
        """expected None: how many received it is unknown (a cluster published it through
        another node than the channel's); collect acks for the whole ack timeout."""
        deadline = time.monotonic() + self._ack_timeout
        received = 0
        if expected is None:
            self._stats.count("invalidations.receivers_unknown")
        try:
            while expected is None or received < expected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if expected is None:
                        return False  # waited the whole timeout: every live listener had it
                    self._stats.count("invalidations.ack_timeouts")
                    log.warning("invalidation %s: %d of %d acks in time", ack_key, received, expected)
                    return False
                # Short blocking waits: a BLPOP must answer well within the socket timeout; and
                # never under 10 ms, which Redis would round down to 0, "block forever".
                if self._redis.blpop([ack_key], timeout=max(0.01, min(remaining, ACK_POLL))) is not None:
                    received += 1
            return True
        except REDIS_ERRORS:
            # The message went out but its acks cannot be read: a Redis Cluster that is down
            # during a failover still delivers PUBLISH (no key) and refuses keyed commands.
            # Give the listeners the ack timeout to apply it, as for a slow listener.
            self._stats.count("invalidations.ack_failures")
            time.sleep(max(0.0, deadline - time.monotonic()))
            raise
        finally:
            self._stats.count("invalidations.acknowledged", received)
            if expected != 0:
                self._delete_acks(ack_key)

    def _delete_acks(self, ack_key):
        try:
            self._redis.delete(ack_key)
        except REDIS_ERRORS:
            pass  # it expires (the listeners set a TTL on it)


class Listener(threading.Thread):
    """Applies invalidations to this worker's L1; see the module docstring."""

    def __init__(self, connect, channel, ack_prefix, local, stats,
                 health_interval=0.3, health_timeout=0.5, ack_client=None, node_check=None,
                 node_check_interval=1.0):
        super().__init__(name="feedapp-invalidation-listener", daemon=True)
        # node_check(client) -> False when the node we subscribed on no longer serves the
        # channel's slot (a Redis Cluster failover that left it running): the publisher no
        # longer counts us there, so we resubscribe where it publishes (redis_client.py).
        self._node_check = node_check
        self._node_check_interval = node_check_interval
        self._connect = connect  # () -> a new redis.Redis for this listener alone
        self._channel = channel
        self._ack_prefix = ack_prefix
        self._local = local
        self._stats = stats
        self._health_interval = health_interval
        self._health_timeout = health_timeout
        self._ack_client = ack_client
        self._stopping = threading.Event()
        self._backoff = EqualJitterBackoff(cap=2.0, base=0.05)
        self._last_seq = OrderedDict()
        self._live = threading.Event()
        self.reconnects = 0
        self._lost_at = None  # when the subscription was lost, while it is
        # Runs once subscribed, before the caches are trusted again (e.g. drain the outbox of
        # invalidations that failed meanwhile); if it raises, the session starts over.
        self.before_live = lambda: None

    @property
    def live(self) -> bool:
        """True while subscribed and healthy: only then may L1 be trusted."""
        return self._live.is_set()

    def wait_live(self, timeout: float) -> bool:
        return self._live.wait(timeout)

    def stop(self):
        self._stopping.set()

    def run(self):
        failures = 0
        while not self._stopping.is_set():
            sessions = self.reconnects
            try:
                self._session()
                failures = 0
            except ResyncRequested:
                failures = 0
                log.info("invalidation listener of worker %d: a write could not invalidate L2; "
                         "draining the outbox before the caches are trusted again", os.getpid())
            except Exception as err:  # noqa: BLE001 - the listener must never die
                # Back off on repeated failures to connect, not after a session that worked.
                failures = 1 if self.reconnects > sessions else failures + 1
                if self._lost_at is None:
                    self._lost_at = time.monotonic()
                log.warning("invalidation listener of worker %d lost its subscription to %r (%s; attempt %d); "
                            "L1 cleared and bypassed until it resubscribes", os.getpid(), self._channel,
                            describe(err), failures)
            finally:
                self._go_untrusted()
            self._stopping.wait(self._backoff.compute(failures) if failures else 0.05)

    def _go_untrusted(self):
        self._live.clear()
        self._local.clear()

    def _session(self):
        client = self._connect()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self._channel)
            self._await_subscribed(pubsub)
            self._check_node(client)
            self._local.clear()  # whatever was sent while we were away is lost: start empty
            self._last_seq.clear()
            self.before_live()
            self._live.set()
            self.reconnects += 1
            self._stats.count("listener.subscriptions")
            if self._lost_at is not None:
                log.warning("invalidation listener of worker %d resubscribed after %.2f s; L1 in use again",
                            os.getpid(), time.monotonic() - self._lost_at)
                self._lost_at = None
            self._listen(pubsub, client)
        finally:
            self._go_untrusted()
            pubsub.close()
            client.close()

    def _check_node(self, client):
        if self._node_check is not None and not self._node_check(client):
            raise ConnectionError("the channel's slot is served by another node now")

    def _await_subscribed(self, pubsub):
        # Generous: a busy worker must not take a slow confirmation for a lost connection.
        deadline = time.monotonic() + max(2.0, self._health_timeout)
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.2)
            if message and message["type"] == "subscribe":
                return
        raise TimeoutError("no subscribe confirmation")

    def _listen(self, pubsub, client):
        last_heard = checked = time.monotonic()
        ping_sent = None
        while not self._stopping.is_set():
            if time.monotonic() - checked >= self._node_check_interval:
                checked = time.monotonic()
                self._check_node(client)
            # Short waits: a silent server is noticed within interval + timeout (+ 0.1 s).
            message = pubsub.get_message(timeout=min(self._health_interval, 0.1))
            now = time.monotonic()
            if message is not None:
                last_heard, ping_sent = now, None
                if message["type"] == "message":
                    self._apply(message["data"])
                elif message["type"] == "subscribe":
                    # The client reconnected and resubscribed by itself: messages may be lost.
                    raise ConnectionError("subscription was silently renewed")
            elif ping_sent is None and now - last_heard >= self._health_interval:
                pubsub.ping()
                ping_sent = now
            elif ping_sent is not None and now - ping_sent >= self._health_timeout:
                raise TimeoutError("subscriber connection went silent")

    def _apply(self, data: bytes):
        try:
            message = orjson.loads(data)
            keys, prefixes, origin, seq = message["k"], message["p"], message["o"], message["s"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring malformed invalidation message")
            return
        self._local.evict(keys, prefixes)
        self._stats.count("invalidations.received")
        if self._gap(origin, seq):
            log.warning("invalidation gap from %s (got %s): clearing L1", origin, seq)
            self._stats.count("invalidations.gaps")
            self._local.clear()
        resync = message.get("r") == 1
        if resync:  # untrusted before the writer hears our ack, so no read can slip in between
            self._go_untrusted()
            self._stats.count("invalidations.resyncs")
        self._ack(f"{self._ack_prefix}{origin}:{seq}")
        if resync:
            raise ResyncRequested()

    def _gap(self, origin, seq) -> bool:
        last = self._last_seq.pop(origin, None)
        self._last_seq[origin] = seq
        if len(self._last_seq) > 1000:
            self._last_seq.popitem(last=False)
        return last is not None and seq != last + 1

    def _ack(self, ack_key):
        try:
            with self._ack_client.pipeline(transaction=False) as pipe:
                pipe.rpush(ack_key, 1)
                pipe.expire(ack_key, 10)
                pipe.execute()
        except REDIS_ERRORS as err:
            log.warning("could not acknowledge %s: %r", ack_key, err)
