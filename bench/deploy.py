"""Processes the benchmark starts: one redis-server and gunicorn deployments, all stopped by PID.

A copy of what tests/e2e/deployment.py does (bench/ does not import tests/), plus what a
benchmark needs: any WSGI app (feedapp or a baseline), the worker PIDs for RSS sampling, and
a Redis shared by every configuration so it can be flushed between them.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
FEEDAPP = ["-c", "gunicorn.conf.py", "wsgi:app"]
# The baseline runs with the same worker settings as gunicorn.conf.py (gthread, 4 threads).
BASELINE = ["-c", "bench/baselines/gunicorn_baseline.py", "bench.baselines.flask_caching_app:app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn <args>` on a free loopback port with `env`; start() waits for every worker."""

    def __init__(self, name, args, data_dir, workers=4, env=None, root=ROOT):
        """root: the checkout to run (another one to compare two versions side by side)."""
        self.name = name
        self.root = Path(root)
        self.args = args
        self.data_dir = Path(data_dir)
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATA_DIR": str(self.data_dir), "PORT": str(self.port),
                    "HOST": "127.0.0.1", "WORKERS": str(workers), **(env or {})}
        self.process = None
        self.log = None

    def start(self, timeout=60.0) -> "Gunicorn":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.data_dir / f"gunicorn-{self.name}.log", "wb")
        command = [sys.executable, "-m", "gunicorn", *self.args]
        self.process = subprocess.Popen(command, cwd=self.root, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_for_workers(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_workers(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited:\n{self.log_text()}")
            try:
                ok = requests.get(self.url("/healthz"), timeout=2).status_code == 200
            except requests.RequestException:
                ok = False
            if ok and len(self.worker_pids()) >= self.workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {self.name} not ready within {timeout}s:\n{self.log_text()}")

    def worker_pids(self) -> list:
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children()
                    if "redis" not in child.name()]
        except psutil.Error:
            return []

    def wait_idle(self, threshold=0.15, quiet=2, timeout=240.0) -> float:
        """Wait until the workers use < `threshold` of a CPU for `quiet` seconds in a row (their
        own start-up work, e.g. feedapp's WARM_ON_START, is done); the seconds waited."""
        started = time.monotonic()
        procs = [psutil.Process(pid) for pid in self.worker_pids()]
        for proc in procs:
            proc.cpu_percent(None)
        calm = 0
        while calm < quiet and time.monotonic() - started < timeout:
            time.sleep(1)
            busy = 0.0
            for proc in procs:
                try:
                    busy += proc.cpu_percent(None) / 100
                except psutil.Error:
                    pass
            calm = calm + 1 if busy < threshold else 0
        return time.monotonic() - started

    def log_text(self) -> str:
        path = self.data_dir / f"gunicorn-{self.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self, timeout=15.0):
        """SIGTERM the master (it stops its workers), SIGKILL what is left of its group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:  # workers that outlived their master (never ours to leave behind)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.log is not None:
            self.log.close()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RssSampler:
    """Peak memory of each worker, sampled every `interval` seconds in a thread: its PSS
    (proportional set size), because the workers share the embedded store's memory-mapped
    file and the pages forked from the master; RSS would count those once per worker."""

    def __init__(self, pids_of, interval=0.5):
        self._pids_of = pids_of
        self._interval = interval
        self._stop = threading.Event()
        self.peak = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid in self._pids_of():
                try:
                    rss = psutil.Process(pid).memory_full_info().pss
                except psutil.Error:
                    continue
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
            self._stop.wait(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def peak_mb(self) -> float:
        return max(self.peak.values(), default=0) / 2**20
