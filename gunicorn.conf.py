"""gunicorn settings for feedapp.

The master (before it forks any worker) starts the embedded redis-servers when REDIS_URL is
unset (one for the cache, one that never evicts for auth state: feedapp/infra/embedded_redis.py),
creates the indexes, and seeds demo data into an empty embedded store (never in production); workers inherit
REDIS_URL and AUTH_REDIS_URL through the environment and build their own clients after fork.
"""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WORKERS", "4"))
worker_class = os.environ.get("WORKER_CLASS", "gthread")
threads = int(os.environ.get("THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
preload_app = False
accesslog = os.environ.get("ACCESS_LOG") or None
# gunicorn's control socket defaults to one path per user, which two deployments (or tests)
# on one machine would fight over: opt in with CONTROL_SOCKET=/path.
control_socket = os.environ.get("CONTROL_SOCKET") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("CONTROL_SOCKET")

_embedded = {}


def on_starting(server):
    from feedapp.runtime.bootstrap import prepare_deployment, prepare_metrics_dir

    prepare_metrics_dir()
    _embedded["redis"] = prepare_deployment(server.log)  # the servers it started


def child_exit(server, worker):
    """A worker exited (or was killed): keep its counts, drop its live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """After fork and app load: start this worker's cache tiers, listener and warm-up."""
    from feedapp.runtime.warmup import start_warmup

    res = worker.wsgi.extensions["feedapp"]
    try:
        res.cache  # noqa: B018 - built now, so the worker reports to the stats from its start
    except Exception as err:  # noqa: BLE001 - Redis may be down: the first request retries
        worker.log.warning("worker %s could not build its cache tiers yet: %r", worker.pid, err)
    if res.config.warm_on_start and res.config.cache_mode != "none":
        start_warmup(res, res.config.warm_users)


def on_exit(server):
    for redis in _embedded.pop("redis", None) or ():
        redis.stop()
