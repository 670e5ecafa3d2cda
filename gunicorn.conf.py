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
    """After fork and app load: start this worker's threads (listener, recovery, stats) and
    its warm-up."""
    from feedapp.runtime.warmup import start_warmup

    app_worker = worker.wsgi.extensions["feedapp"]  # built by create_app in this process
    app_worker.start()
    if app_worker.config.warm_on_start and app_worker.config.cache_mode != "none":
        start_warmup(app_worker, app_worker.config.warm_users)


def on_exit(server):
    for redis in _embedded.pop("redis", None) or ():
        redis.stop()
