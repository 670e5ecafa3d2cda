"""Per-process clients, caches and services, made on first use in the process that uses them.

Nothing here runs at import time or in `create_app`: a gunicorn worker builds its own MongoDB
and Redis clients, its L1 and its listener thread after fork, and a process that forks after
using them (a preloading master, a test) gets fresh ones in the child, because everything is
keyed by the process id (rule 7).
"""
import logging
import os
import threading

import redis

from . import redis_client as redis_clients
from . import store
from .auth import TokenService
from .cache.breaker import CircuitBreaker
from .cache.keys import Keys
from .cache.local import LocalCache
from .cache.outbox import Outbox
from .cache.policy import make_policy
from .cache.remote import RemoteCache
from .cache.tiered import PassThroughCache, TieredCache
from .config import ConfigError
from .invalidation import Listener, Publisher, worker_origin
from .maintenance import Maintenance
from .mongo import explore_read_preference
from .ratelimit import Limit, LoginLimiter, RegistrationLimiter
from .repository import Repository
from .services import FollowService, PostService, ProfileService
from .services.completions import Completions
from .services.fanout import Fanout
from .stats import Flusher, Stats

log = logging.getLogger(__name__)


def redis_client(url: str, timeout: float = 1.0, **options):
    """A Redis (or Redis Cluster) client whose calls fail fast instead of hanging on a dead
    server; see feedapp/redis_client.py for the URL convention."""
    return redis_clients.connect(url, timeout, **options)


class Resources:
    def __init__(self, config):
        self.config = config
        self.keys = Keys(config.key_prefix)
        self.policy = make_policy(config)
        self._lock = threading.RLock()
        self._pid = None
        self._made = {}

    def _get(self, name, factory):
        made = self._made
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._made = made = {}
                    self._pid = os.getpid()
        value = made.get(name)
        if value is None:
            with self._lock:
                value = self._made.get(name)
                if value is None:
                    value = self._made[name] = factory()
        return value

    # --- clients ------------------------------------------------------------------------------
    @property
    def repo(self) -> Repository:
        return self._get("repo", self._make_repo)

    @property
    def redis(self) -> redis.Redis:
        return self._get("redis", lambda: redis_client(self._redis_url(), self.config.redis_timeout))

    @property
    def stats(self) -> Stats:
        return self._get("stats", self._make_stats)

    @property
    def auth_redis(self) -> "redis.Redis":
        """Sessions, revocations and login counters: a Redis that never evicts (AUTH_REDIS_URL)."""
        if not self.config.auth_redis_url or self.config.auth_redis_url == self.config.redis_url:
            return self.redis
        return self._get("auth_redis", lambda: redis_client(self.config.auth_redis_url, self.config.redis_timeout))

    @property
    def tokens(self) -> TokenService:
        return self._get("tokens", lambda: TokenService(
            self.config.jwt_secret, self.auth_redis, self.keys,
            self.config.access_token_ttl, self.config.refresh_token_ttl, self.config.max_sessions_per_user,
        ))

    @property
    def login_limiter(self) -> LoginLimiter:
        config = self.config
        return self._get("login_limiter", lambda: LoginLimiter(
            self.auth_redis, self.keys,
            per_account=Limit(config.login_account_limit, config.login_account_window),
            per_address=Limit(config.login_address_limit, config.login_address_window),
        ))

    @property
    def registration_limiter(self) -> RegistrationLimiter:
        return self._get("registration_limiter", lambda: RegistrationLimiter(
            self.auth_redis, self.keys,
            Limit(self.config.register_address_limit, self.config.register_address_window),
        ))

    # --- caches -------------------------------------------------------------------------------
    @property
    def cache(self):
        return self._get("cache", self._make_cache)

    @property
    def listener(self) -> Listener | None:
        return self.cache.listener if isinstance(self.cache, TieredCache) else None

    # --- services -----------------------------------------------------------------------------
    @property
    def profiles(self) -> ProfileService:
        return self._get("profiles", lambda: ProfileService(self.repo, self.cache, self.keys))

    @property
    def fanout(self) -> Fanout:
        return self._get("fanout", lambda: Fanout(self.repo, self.cache, self.keys, self.config.fanout_limit))

    @property
    def follows(self) -> FollowService:
        return self._get("follows", lambda: FollowService(self.repo, self.cache, self.keys, self.fanout, self.completions))

    @property
    def posts(self) -> PostService:
        return self._get("posts", lambda: PostService(
            self.repo, self.cache, self.keys, self.profiles, self.fanout, self.config.list_cap, self.stats,
            self.completions,
        ))

    @property
    def completions(self) -> Completions:
        return self._get("completions", lambda: Completions(self.repo, self.cache, self.keys))

    def close(self):
        """Stop this process's threads and close its clients (tests; orderly shutdown)."""
        with self._lock:
            made, self._made = self._made, {}
        cache = made.get("cache")
        if isinstance(cache, TieredCache) and cache.listener is not None:
            cache.listener.stop()  # it notices within one health interval
        if made.get("stats") is not None:
            made["stats"].flusher.stop()
        if made.get("maintenance") is not None:
            made["maintenance"].stop()
        for name in ("redis", "auth_redis"):
            if made.get(name) is not None:
                made[name].close()

    # --- factories ----------------------------------------------------------------------------
    def _make_repo(self):
        repo = Repository(store.connect(self.config), explore_read_preference(self.config))
        try:
            repo.ensure_indexes()
        except Exception as err:  # noqa: BLE001 - serve what we can; /readyz tells the story
            log.warning("could not create indexes: %r", err)
        return repo

    def _redis_url(self) -> str:
        if not self.config.redis_url:
            raise ConfigError(
                "REDIS_URL is not set and no embedded Redis is running: start the app with "
                "`make run` (gunicorn starts one) or set REDIS_URL"
            )
        return self.config.redis_url

    def _make_stats(self):
        stats = Stats(lambda: self.redis, self.keys)
        stats.flusher = Flusher(stats)
        stats.flusher.start()
        return stats

    def _make_cache(self):
        mode = self.config.cache_mode
        if mode == "none":
            return PassThroughCache(self.stats, self.keys)
        remote = RemoteCache(self.redis, CircuitBreaker(), self.config.lease_ms)
        origin = worker_origin()
        publisher = Publisher(self.redis, self.keys.channel, self.keys.ack_prefix, origin,
                              self.stats, self.config.ack_timeout)
        local = listener = None
        if mode == "tiered":
            local = LocalCache(self.config.l1_maxsize, lambda key: self.policy.l1_ttl(self.keys.family(key)),
                               refresh_window=self.config.l1_refresh_window,
                               max_bytes=self.config.l1_max_bytes, sizeof=self._encoded_size)
            cluster = self.redis if redis_clients.is_cluster(self.redis) else None
            listener = Listener(
                lambda: redis_clients.subscriber(self._redis_url(), self.config.redis_timeout, self.keys.channel, cluster),
                self.keys.channel, self.keys.ack_prefix, local, self.stats, ack_client=self.redis,
                node_check=redis_clients.subscription_check(self.redis, self.keys.channel),
            )
        cache = TieredCache(keys=self.keys, stats=self.stats, policy=self.policy, local=local,
                            remote=remote, publisher=publisher, listener=listener, outbox=self._make_outbox())
        if listener is not None:
            listener.before_live = cache.on_resubscribed
            listener.start()  # L1 and L2 are bypassed until it is subscribed (about a millisecond)
        self.stats.gauges = lambda: worker_gauges(local, remote, listener)
        tasks = [lambda: self.completions.settle(), cache.drain_now]
        if local is not None and self.config.l1_refresh_window:
            tasks.append(cache.refresh_expiring)
        self._made["maintenance"] = Maintenance(tasks).start_once()
        return cache

    def _encoded_size(self, key, value) -> int:
        """What value takes encoded by its family's codec (L1's measure of an entry)."""
        return len(self.policy(self.keys.family(key))[0].encode(value))

    def _make_outbox(self):
        outbox = Outbox(self.repo.db, self.policy.longest_l2_ttl())
        try:
            outbox.ensure_index()
        except Exception as err:  # noqa: BLE001 - the store may be down: the outbox still works
            log.warning("could not create the outbox index: %r", err)
        return outbox


def worker_gauges(local, remote, listener) -> dict:
    """This worker's current levels, sent with its heartbeat (see stats.py)."""
    gauges = {"breaker.open": int(remote.breaker.state != "closed")}
    if local is not None:
        gauges.update({"l1.size": len(local), "l1.maxsize": local.maxsize, "l1.bytes": local.bytes,
                       "l1.max_bytes": local.max_bytes, "l1.too_large": local.too_large,
                       "listener.live": int(listener.live)})
    return gauges
