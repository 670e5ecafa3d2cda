"""Start and stop a real gunicorn deployment (several workers, embedded defaults) for tests."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Deployment:
    """`gunicorn -c gunicorn.conf.py wsgi:app` on a free loopback port, in its own DATA_DIR.

    Several app servers may share one DATA_DIR (one store) when each has its own `name` (its
    log file) and env gives them REDIS_URL and their own PROMETHEUS_MULTIPROC_DIR.
    """

    def __init__(self, data_dir, workers=3, env=None, name="gunicorn"):
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir / f"{name}.log"
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATA_DIR": str(self.data_dir),
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "WORKERS": str(workers),
            "SEED_ON_START": "0",
            "REGISTER_ADDRESS_LIMIT": "0",  # tests register many users from 127.0.0.1
            **(env or {}),
        }
        for name in ("MONGO_URI", "REDIS_URL", "AUTH_REDIS_URL", "JWT_SECRET", "FEEDAPP_ENV"):
            if env is None or name not in env:
                self.env.pop(name, None)
        self.process = None

    def start(self, timeout=30.0) -> "Deployment":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        try:
            self._wait_for_workers(timeout)
        except BaseException:
            self.stop()  # a deployment that failed to start must not outlive the test
            raise
        return self

    def _wait_for_workers(self, timeout):
        deadline = time.monotonic() + timeout
        seen = set()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_text()}")
            try:
                response = requests.get(f"{self.base}/healthz", timeout=2, headers={"Connection": "close"})
                seen.add(response.headers.get("X-Worker"))
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy starting
                time.sleep(0.1)
                continue
            if len(seen) >= self.workers:
                return
        raise RuntimeError(f"only saw workers {seen} within {timeout}s: {self.log_text()}")

    def log_text(self) -> str:
        path = self.log_path
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self, timeout=15.0):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
