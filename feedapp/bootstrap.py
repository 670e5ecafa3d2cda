"""What a deployment's master process does once, before any worker starts."""
import os
import shutil
from pathlib import Path

from .config import Config
from .embedded_redis import EmbeddedRedis
from .repository import Repository
from .seed import seed_demo_data
from .store import connect


def prepare_metrics_dir():
    """Give prometheus_client's multiprocess mode an empty directory before workers fork."""
    config = Config.from_env()
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or config.data_dir / "prometheus")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def prepare_deployment(log):
    """Start the embedded Redis if REDIS_URL is unset, create indexes, seed an empty store.

    Returns the EmbeddedRedis it started (or None). Every client it opens is closed again, so
    nothing leaks into the forked workers.
    """
    config = Config.from_env()  # fails here, with a clear message, on a bad setting
    embedded = None
    if not config.redis_url:
        embedded = EmbeddedRedis(config.data_dir / "redis").start()
        os.environ["REDIS_URL"] = embedded.url
        log.info("embedded redis-server at %s", embedded.url)
    db = connect(config)
    try:
        repo = Repository(db)
        repo.ensure_indexes()
        if config.embedded_store and config.seed_on_start and repo.is_empty():
            summary = seed_demo_data(repo, config.seed_users, config.seed_posts, fanout_limit=config.fanout_limit)
            log.info("seeded demo data: %s", summary)
    finally:
        _close(db)
    return embedded


def _close(db):
    # pymongo's Database turns unknown attributes into collections: ask the class, not the object.
    if callable(getattr(type(db), "close", None)):
        db.close()
    else:
        db.client.close()
