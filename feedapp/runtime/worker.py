"""One worker's objects, wired in one place: `build_worker(config) -> Worker`, then `start()`
and `close()`.

`build_worker` only constructs: Redis clients connect on first use, no thread of feedapp's
starts and nothing is read or written. `Worker.start()` creates the store's indexes and starts
the worker's threads (the invalidation listener, the recovery, the stats flusher, the
maintenance tick). Who calls what:

- gunicorn: each worker loads the app after the fork (`preload_app = False`), so `create_app`
  builds that worker's objects in the worker itself; `post_worker_init` starts them
  (docs/design.md, rule 7: nothing is shared across a fork).
- the CLI: commands that only touch the store use `worker.repo` unstarted; those that write
  through the caches start the worker first.
- tests: `create_app(config)` and `worker.start()`, or `build_worker` with their own pieces
  (a store wrapped with faults, a clock they move on).
"""
import logging
import os
import socket
import time

from ..auth import TokenService
from ..cache.keys import Keys
from ..cache.policy import make_policy
from ..cache.tiers import build_tiers, ensure_outbox_index
from ..config import ConfigError
from ..infra import redis_access, store
from ..infra.mongo import explore_read_preference
from ..observability.stats import Flusher, Stats
from ..ratelimit import Limit, LoginLimiter, RegistrationLimiter
from ..repository import Repository
from ..services import AccountService, FollowService, PostService, ProfileService
from ..services.effects import Effects
from ..services.fanout import Fanout
from ..services.operations import Operations
from .maintenance import Maintenance

log = logging.getLogger(__name__)

NO_REDIS_URL = ("REDIS_URL is not set and no embedded Redis is running: start the app with "
                "`make run` (gunicorn starts one) or set REDIS_URL")


class Worker:
    """Everything one process serves with: its clients, its cache tiers and its services.
    Build it with `build_worker`; the attributes are read by views (through
    `feedapp.api.worker()`), the CLI and tests."""

    def __init__(self, config, *, database, redis, auth_redis, l1_clock=time.monotonic):
        self.config = config
        self.pid = os.getpid()
        self.keys = Keys(config.key_prefix)
        self.policy = make_policy(config)
        self.database, self.redis, self.auth_redis = database, redis, auth_redis
        self.repo = Repository(database, explore_read_preference(config))
        self.stats = Stats(lambda: redis, self.keys)
        self.stats.flusher = Flusher(self.stats)
        self.tiers = self._build_tiers(l1_clock)
        self.stats.gauges = self.tiers.gauges
        self._build_auth()
        self._build_services()
        self.maintenance = None
        if self.tiers.local is not None and config.l1_refresh_window:
            self.maintenance = Maintenance([self.tiers.refresh_ahead.run])
        self.started = False

    # --- the cache tiers ----------------------------------------------------------------------
    def _build_tiers(self, l1_clock):
        config, cached = self.config, self.config.cache_mode != "none"
        return build_tiers(config, keys=self.keys, policy=self.policy, stats=self.stats,
                           redis=self.redis if cached else None, subscriber=self._subscriber if cached else None,
                           repo=self.repo, origin=worker_origin(), l1_clock=l1_clock)

    def _subscriber(self):
        """A new client for the listener's subscription (made again after each disconnect)."""
        if not self.config.redis_url:
            raise ConfigError(NO_REDIS_URL)
        cluster = self.redis if redis_access.is_cluster(self.redis) else None
        return redis_access.subscriber(self.config.redis_url, self.config.redis_timeout, self.keys.channel, cluster)

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

    # --- auth and services --------------------------------------------------------------------
    def _build_auth(self):
        config, auth_redis = self.config, self.auth_redis
        self.tokens = TokenService(config.jwt_secret, auth_redis, self.keys, config.access_token_ttl,
                                   config.refresh_token_ttl, config.max_sessions_per_user)
        self.login_limiter = LoginLimiter(
            auth_redis, self.keys,
            per_account=Limit(config.login_account_limit, config.login_account_window),
            per_address=Limit(config.login_address_limit, config.login_address_window),
        )
        self.registration_limiter = RegistrationLimiter(
            auth_redis, self.keys, Limit(config.register_address_limit, config.register_address_window))

    def _build_services(self):
        repo, cache, writer, keys = self.repo, self.cache, self.writer, self.keys
        self.effects = Effects(repo, writer, self.recovery)
        self.profiles = ProfileService(repo, cache, writer, keys, self.effects)
        self.fanout = Fanout(repo, writer, keys, self.config.fanout_limit)
        self.follows = FollowService(repo, writer, keys, self.fanout, self.effects)
        self.posts = PostService(repo, cache, writer, keys, self.profiles, self.fanout, self.effects,
                                 self.config.list_cap, self.stats)
        self.accounts = AccountService(repo, self.profiles, self.tokens, self.login_limiter,
                                       self.registration_limiter, self.config.password_hash_method)
        self.operations = Operations(repo, self.redis, self.auth_redis, writer, keys, self.profiles)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "Worker":
        """Create the store's indexes (best effort: a store that is down is reported by
        /readyz, not fatal) and start this worker's threads. L1 and L2 are bypassed until the
        listener's first renewals, about a millisecond later. Calling it again does nothing."""
        if self.started:
            return self
        if self.pid != os.getpid():
            raise RuntimeError("this worker was built in another process: build one per process "
                               "(docs/design.md, rule 7)")
        self.started = True
        self.ensure_indexes()
        self.tiers.start()
        self.stats.flusher.start()
        if self.maintenance is not None:
            self.maintenance.start()
        return self

    def ensure_indexes(self):
        """Create the store's indexes and the outbox's (idempotent; failures are logged)."""
        try:
            self.repo.ensure_indexes()
        except Exception as err:  # noqa: BLE001 - serve what we can; /readyz tells the story
            log.warning("could not create indexes: %r", err)
        try:
            ensure_outbox_index(self.repo, self.policy)
        except Exception as err:  # noqa: BLE001 - the store may be down: the outbox still works
            log.warning("could not create the outbox index: %r", err)

    def close(self):
        """Stop this worker's threads (the listener notices within one ping interval) and
        close its clients."""
        if self.started:
            self.tiers.stop()
            self.stats.flusher.stop()
            if self.maintenance is not None:
                self.maintenance.stop()
        for client in {id(self.redis): self.redis, id(self.auth_redis): self.auth_redis}.values():
            client.close()
        store.close(self.database)


def build_worker(config, *, database=None, l1_clock=time.monotonic) -> Worker:
    """This process's worker for `config`, built and not started.

    database: an open store to use instead of `store.connect(config)` (tests wrap one with
    faults); l1_clock: the clock of L1's TTLs (tests move it on)."""
    redis = _redis(config.redis_url, config)
    auth_redis = redis
    if config.auth_redis_url and config.auth_redis_url != config.redis_url:
        auth_redis = _redis(config.auth_redis_url, config)  # sessions: a Redis that never evicts
    database = database if database is not None else store.connect(config)
    return Worker(config, database=database, redis=redis, auth_redis=auth_redis, l1_clock=l1_clock)


def _redis(url, config):
    return redis_access.connect(url, config.redis_timeout) if url else _NoRedis()


class _NoRedis:
    """The Redis client of a process started without REDIS_URL (a CLI command beside no
    running server): building works, and whatever needs Redis fails with NO_REDIS_URL."""

    def register_script(self, _text):
        def run(*_args, **_kwargs):
            raise ConfigError(NO_REDIS_URL)
        return run

    def close(self):
        pass

    def __getattr__(self, name):
        raise ConfigError(NO_REDIS_URL)


def worker_origin() -> str:
    """This worker's id on the invalidation channel: unique across hosts and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
