"""One worker's cache tiers, built in one place: `build_tiers(...) -> Tiers`.

The read side (`TieredCache`: L1, L2, the cascade) and the write side (`Writer`, the
publisher, the listener, the trust lease and the recovery) share the L1, the Redis client and
the trust; this is where they are joined. Nothing starts until `Tiers.start()`.

Modes (CACHE_MODE): `tiered` (L1 + L2 + L3), `l2` (no L1: no listener, nothing to publish),
`none` (every read from the store; writes evict nothing).
"""
import time
from dataclasses import dataclass, field

from ..infra.redis_access import subscription_check
from .breaker import CircuitBreaker
from .cascade import TieredCache
from .invalidation import Listener, Outbox, Publisher, Recovery, RecoveryThread, Registry, Trust, Writer
from .local import LocalCache
from .passthrough import PassThroughCache
from .refresh import RefreshAhead
from .remote import RemoteCache


class NoWriter:
    """The write side when nothing is cached."""

    def invalidate(self, keys=(), prefixes=()) -> int:
        return 0

    def write_through(self, list_keys, entry, cap, evict=()) -> int:
        return 0


@dataclass
class Tiers:
    cache: object  # TieredCache | PassThroughCache
    writer: object  # Writer | NoWriter
    recovery: Recovery | None = None
    trust: Trust | None = None
    remote: RemoteCache | None = None
    publisher: Publisher | None = None
    listener: Listener | None = None
    refresh_ahead: RefreshAhead | None = None  # with an L1: run by the maintenance thread
    threads: list = field(default_factory=list)

    @property
    def local(self) -> LocalCache | None:
        return self.cache.local

    def start(self) -> "Tiers":
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 0):
        """Stop the threads (and wait up to `timeout` for each)."""
        for thread in self.threads:
            thread.stop()
        for thread in self.threads:
            if timeout and thread.is_alive():
                thread.join(timeout)

    def gauges(self) -> dict:
        """This worker's current levels, sent with its heartbeat (see stats.py)."""
        if self.remote is None:
            return {}
        gauges = {"breaker.open": int(self.remote.breaker.state != "closed")}
        local = self.local
        if local is not None:
            gauges.update({"l1.size": len(local), "l1.maxsize": local.maxsize, "l1.bytes": local.bytes,
                           "l1.max_bytes": local.max_bytes, "l1.too_large": local.too_large,
                           "listener.live": int(self.trust.l1())})
        return gauges


def build_tiers(config, *, keys, policy, stats, redis, subscriber, repo, origin: str,
                l1_clock=time.monotonic, clock=time.monotonic, l1_sizeof=None) -> Tiers:
    """A worker's tiers for `config`.

    redis: the worker's client; subscriber(): a new client for the listener's subscription;
    repo: the store (the outbox and recounts); origin: this worker's id on the channel;
    l1_clock: L1's TTL clock (tests move it); clock: the trust lease's (monotonic time);
    l1_sizeof(key, value): L1's measure of a value stored without a stated size (default: its
    family's codec)."""
    tiered = config.cache_mode == "tiered"
    trust = Trust(config.trust_lease, clock=clock, stream=tiered)
    recovery = Recovery(repo, keys, Outbox(repo.db, policy.longest_l2_ttl()), trust, stats)
    recovery_thread = RecoveryThread(recovery, trust.recovery_lease / 4)
    if config.cache_mode == "none":
        recovery.deliver = lambda keys, prefixes: None
        return Tiers(PassThroughCache(stats, keys), NoWriter(), recovery, trust, threads=[recovery_thread])
    remote = RemoteCache(redis, CircuitBreaker(), config.lease_ms)
    local = None
    if tiered:
        local = LocalCache(config.l1_maxsize, lambda key: policy.l1_ttl(keys.family(key)),
                           timer=l1_clock, refresh_window=config.l1_refresh_window,
                           max_bytes=config.l1_max_bytes, sizeof=l1_sizeof or encoded_size(policy, keys))
    cache = TieredCache(keys=keys, stats=stats, policy=policy, trust=trust, local=local, remote=remote,
                        lease_wait=config.lease_ms / 1000 + 0.5)
    tiers = Tiers(cache, None, recovery, trust, remote, threads=[recovery_thread])
    publisher = None
    if tiered:
        tiers.refresh_ahead = RefreshAhead(cache)
        registry = Registry(redis, keys.listeners)
        publisher = Publisher(redis, keys.channel, keys.ack_prefix, registry, origin, stats, config.trust_lease, clock)
        tiers.publisher = publisher
        tiers.listener = Listener(subscriber, keys.channel, keys.ack_prefix, registry, origin, local, trust, stats,
                                  ack_client=redis, node_check=subscription_check(redis, keys.channel))
        tiers.threads.append(tiers.listener)
    tiers.writer = Writer(remote, publisher, recovery, cache.evict_local, trust, stats)
    recovery.deliver = tiers.writer.deliver
    return tiers


def encoded_size(policy, keys):
    """sizeof(key, value): what value takes encoded by its family's codec (L1's measure)."""
    return lambda key, value: len(policy(keys.family(key))[0].encode(value))


def ensure_outbox_index(repo, policy):
    """Create the outbox's TTL index (safe to call from every process at every start)."""
    Outbox(repo.db, policy.longest_l2_ttl()).ensure_index()
