"""Per-process clients and services, made on first use in the process that uses them.

Nothing here runs at import time or in `create_app`: a gunicorn worker builds its own MongoDB
and Redis clients after fork, and a process that forks after using them (a preloading master,
a test) gets fresh ones in the child, because everything is keyed by the process id.
"""
import logging
import os
import threading

import redis

from . import store
from .auth import TokenService
from .cache.keys import Keys
from .cache.tiered import PassThroughCache
from .config import ConfigError
from .repository import Repository
from .services import FollowService, PostService, ProfileService
from .stats import Flusher, Stats

log = logging.getLogger(__name__)


def redis_client(url: str, timeout: float = 1.0) -> redis.Redis:
    """A Redis client whose calls fail fast instead of hanging on a dead server."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


class Resources:
    def __init__(self, config):
        self.config = config
        self.keys = Keys(config.key_prefix)
        self._lock = threading.RLock()
        self._pid = None
        self._made = {}

    def _get(self, name, factory):
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._made = {}
                    self._pid = os.getpid()
        value = self._made.get(name)
        if value is None:
            with self._lock:
                value = self._made.get(name)
                if value is None:
                    value = self._made[name] = factory()
        return value

    @property
    def repo(self) -> Repository:
        return self._get("repo", self._make_repo)

    @property
    def redis(self) -> redis.Redis:
        return self._get("redis", self._make_redis)

    @property
    def stats(self) -> Stats:
        return self._get("stats", self._make_stats)

    @property
    def cache(self):
        return self._get("cache", lambda: PassThroughCache(self.stats))

    @property
    def tokens(self) -> TokenService:
        return self._get("tokens", lambda: TokenService(
            self.config.jwt_secret, self.redis, self.keys,
            self.config.access_token_ttl, self.config.refresh_token_ttl,
        ))

    @property
    def profiles(self) -> ProfileService:
        return self._get("profiles", lambda: ProfileService(self.repo, self.cache, self.keys))

    @property
    def follows(self) -> FollowService:
        return self._get("follows", lambda: FollowService(self.repo, self.cache, self.keys, self.profiles))

    @property
    def posts(self) -> PostService:
        return self._get("posts", lambda: PostService(self.repo, self.cache, self.keys, self.profiles))

    def _make_repo(self):
        repo = Repository(store.connect(self.config))
        try:
            repo.ensure_indexes()
        except Exception as err:  # noqa: BLE001 - serve what we can; /readyz tells the story
            log.warning("could not create indexes: %r", err)
        return repo

    def _make_stats(self):
        stats = Stats(lambda: self.redis, self.keys)
        Flusher(stats).start()
        return stats

    def _make_redis(self):
        if not self.config.redis_url:
            raise ConfigError(
                "REDIS_URL is not set and no embedded Redis is running: start the app with "
                "`make run` (gunicorn starts one) or set REDIS_URL"
            )
        return redis_client(self.config.redis_url)
