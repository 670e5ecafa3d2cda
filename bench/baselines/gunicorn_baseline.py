"""gunicorn settings for the Flask-Caching baseline: the worker settings of gunicorn.conf.py,
none of its hooks (no embedded services, no cache tiers)."""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WORKERS", "4"))
worker_class = os.environ.get("WORKER_CLASS", "gthread")
threads = int(os.environ.get("THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
preload_app = False
control_socket_disable = True
