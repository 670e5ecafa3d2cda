"""Per-process clients, caches and services, made on first use in the process that uses them.

Nothing here runs at import time or in `create_app`: a gunicorn worker builds its own MongoDB
and Redis clients, its L1 and its listener thread after fork, and a process that forks after
using them (a preloading master, a test) gets fresh ones in the child, because everything is
keyed by the process id (docs/design.md, rule 7).
"""
import logging
import os
import socket
import threading
import time

import redis

from ..auth import TokenService
from ..cache.keys import Keys
from ..cache.policy import make_policy
from ..cache.tiers import Tiers, build_tiers, ensure_outbox_index
from ..config import ConfigError
from ..infra import redis_access as redis_clients
from ..infra import store
from ..infra.mongo import explore_read_preference
from ..observability.stats import Flusher, Stats
from ..ratelimit import Limit, LoginLimiter, RegistrationLimiter
from ..repository import Repository
from ..services import FollowService, PostService, ProfileService
from ..services.effects import Effects
from ..services.fanout import Fanout
from .maintenance import Maintenance

log = logging.getLogger(__name__)


def redis_client(url: str, timeout: float = 1.0, **options):
    """A Redis (or Redis Cluster) client whose calls fail fast instead of hanging on a dead
    server; see feedapp/infra/redis_access.py for the URL convention."""
    return redis_clients.connect(url, timeout, **options)


class Resources:
    def __init__(self, config, l1_clock=time.monotonic):
        """l1_clock: the clock of L1's TTLs (tests move it on)."""
        self.config = config
        self.l1_clock = l1_clock
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
    def tiers(self) -> Tiers:
        """This worker's cache tiers, built and started on first use."""
        return self._get("tiers", self._make_tiers)

    @property
    def cache(self):
        return self.tiers.cache

    @property
    def writer(self):
        return self.tiers.writer

    @property
    def recovery(self):
        return self.tiers.recovery

    @property
    def listener(self):
        return self.tiers.listener

    # --- services -----------------------------------------------------------------------------
    @property
    def effects(self) -> Effects:
        return self._get("effects", lambda: Effects(self.repo, self.writer, self.recovery))

    @property
    def profiles(self) -> ProfileService:
        return self._get("profiles", lambda: ProfileService(self.repo, self.cache, self.writer, self.keys,
                                                            self.effects))

    @property
    def fanout(self) -> Fanout:
        return self._get("fanout", lambda: Fanout(self.repo, self.writer, self.keys, self.config.fanout_limit))

    @property
    def follows(self) -> FollowService:
        return self._get("follows", lambda: FollowService(self.repo, self.writer, self.keys, self.fanout, self.effects))

    @property
    def posts(self) -> PostService:
        return self._get("posts", lambda: PostService(
            self.repo, self.cache, self.writer, self.keys, self.profiles, self.fanout, self.effects,
            self.config.list_cap, self.stats,
        ))

    def close(self):
        """Stop this process's threads and close its clients (tests; orderly shutdown)."""
        with self._lock:
            made, self._made = self._made, {}
        if made.get("tiers") is not None:
            made["tiers"].stop()  # the listener notices within one ping interval
        if made.get("stats") is not None:
            made["stats"].flusher.stop()
        if made.get("maintenance") is not None:
            made["maintenance"].stop()
        for name in ("redis", "auth_redis"):
            if made.get(name) is not None:
                made[name].close()
        if made.get("database") is not None:
            store.close(made["database"])

    # --- factories ----------------------------------------------------------------------------
    def _make_repo(self):
        database = self._made["database"] = store.connect(self.config)  # what close() closes
        repo = Repository(database, explore_read_preference(self.config))
        try:
            repo.ensure_indexes()
        except Exception as err:  # noqa: BLE001 - serve what we can; /readyz tells the story
            log.warning("could not create indexes: %r", err)
        self._make_outbox_index(repo)
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

    def _make_tiers(self) -> Tiers:
        config = self.config
        cluster = None
        subscriber = None
        if config.cache_mode != "none":
            cluster = self.redis if redis_clients.is_cluster(self.redis) else None
            subscriber = lambda: redis_clients.subscriber(self._redis_url(), config.redis_timeout,  # noqa: E731
                                                          self.keys.channel, cluster)
        tiers = build_tiers(config, keys=self.keys, policy=self.policy, stats=self.stats,
                            redis=self.redis if config.cache_mode != "none" else None,
                            subscriber=subscriber, repo=self.repo, origin=worker_origin(),
                            l1_clock=self.l1_clock)
        self.stats.gauges = tiers.gauges
        tiers.start()  # L1 and L2 are bypassed until the first renewals (about a millisecond)
        if tiers.local is not None and config.l1_refresh_window:
            self._made["maintenance"] = Maintenance([tiers.refresh_ahead.run]).start_once()
        return tiers

    def _make_outbox_index(self, repo):
        try:
            ensure_outbox_index(repo, self.policy)
        except Exception as err:  # noqa: BLE001 - the store may be down: the outbox still works
            log.warning("could not create the outbox index: %r", err)


def worker_origin() -> str:
    """This worker's id on the invalidation channel: unique across hosts and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
