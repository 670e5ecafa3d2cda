"""What a deployment's master process does once, before any worker starts."""
import os
import shutil
from pathlib import Path

from ..config import Config
from ..infra.embedded_redis import auth_server, cache_server
from ..infra.mongo import reported
from ..infra.redis_access import REDIS_ERRORS, check_url
from ..infra.redis_access import connect as redis_connect
from ..infra.store import close, connect
from ..repository import Repository
from .seed import seed_demo_data


def prepare_metrics_dir():
    """Give prometheus_client's multiprocess mode an empty directory before workers fork."""
    config = Config.from_env()
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or config.data_dir / "prometheus")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def prepare_deployment(log):
    """Create indexes, seed an empty embedded store, start the embedded Redis servers that are
    not configured.

    Returns the EmbeddedRedis servers it started. Every client it opens is closed again, so
    nothing leaks into the forked workers. A MONGO_URI that cannot be used raises
    MongoUnreachable (one line) before any server is started.
    """
    config = Config.from_env()  # fails here, with a clear message, on a bad setting
    for url in (config.redis_url, config.auth_redis_url):
        check_url(url)
    prepare_store(config, log)
    embedded = start_embedded_redis(config, log)
    warn_if_auth_store_evicts(Config.from_env(), log)
    return embedded


def prepare_store(config, log):
    """Create the indexes; seed the embedded store when it is empty and SEED_ON_START says so."""
    with reported(config):
        db = connect(config)
        try:
            repo = Repository(db)
            repo.ensure_indexes()
            seed_if_wanted(config, repo, log)
        finally:
            close(db)


def seed_if_wanted(config, repo, log):
    """Seed demo data into an empty embedded store when SEED_ON_START asks for it, never in
    production: every demo account's password is public."""
    if not (config.embedded_store and config.seed_on_start):
        return
    if config.production:
        log.info("FEEDAPP_ENV=production: no demo accounts are seeded (SEED_ON_START is ignored)")
        return
    if repo.is_empty():
        summary = seed_demo_data(repo, config.seed_users, config.seed_posts, fanout_limit=config.fanout_limit)
        log.info("seeded demo data: %s", summary)


def start_embedded_redis(config, log) -> list:
    """REDIS_URL unset: start the cache redis-server (LRU under CACHE_REDIS_MAXMEMORY).
    AUTH_REDIS_URL unset too: start the auth redis-server (noeviction) beside it. Exports the
    URLs to the environment the workers inherit."""
    started = []
    if not config.redis_url:
        cache = cache_server(config.data_dir / "redis", config.cache_redis_maxmemory).start()
        os.environ["REDIS_URL"] = cache.url
        started.append(cache)
        log.info("embedded cache redis-server at %s (maxmemory %s, allkeys-lru)", cache.url,
                 config.cache_redis_maxmemory)
        if not config.auth_redis_url:
            auth = auth_server(config.data_dir / "redis-auth").start()
            os.environ["AUTH_REDIS_URL"] = auth.url
            started.append(auth)
            log.info("embedded auth redis-server at %s (noeviction)", auth.url)
    return started


def warn_if_auth_store_evicts(config, log):
    """Sessions and revocations must never be evicted: say so if the auth Redis might."""
    client = redis_connect(config.auth_url, timeout=2)  # on a cluster, CONFIG GET asks one node
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except REDIS_ERRORS as err:  # CONFIG is often disabled on managed Redis
        log.info("could not read the auth Redis maxmemory-policy (%r); it must be noeviction", err)
        return
    finally:
        client.close()
    if policy != "noeviction":
        log.warning(
            "the auth Redis (%s) has maxmemory-policy %s: under memory pressure it may evict "
            "sessions and token revocations. Set AUTH_REDIS_URL to a Redis with noeviction.",
            config.auth_url, policy,
        )
