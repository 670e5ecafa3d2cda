"""A MongoDB wire-protocol server for tests: SecantusDB, or a real MongoDB named by TEST_MONGO_URI.

SecantusDB (the `SecantusDB` package of requirements-dev.txt: a Python server over WiredTiger,
MongoDB's storage engine) is GPL-2.0, so it only ever runs as its own process, started here
as `secantusd-py`; nothing imports it. It advertises itself as a one-member replica set, so
pymongo talks to it as it talks to a primary (retryable writes, sessions, write concern).

Its known limits shape this module: it slows from ~1-2 ms to ~10-15 ms a write once it has
seen about 10,000 retryable writes since it started (state it keeps in memory), so
`WireServer.refresh_if_tired()` restarts it on an empty storage directory once the writes it
counted (serverStatus opcounters) pass WRITE_BUDGET; and it takes seconds to start and stop.
"""
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymongo
from pymongo.errors import PyMongoError

from feedapp.infra.embedded_redis import _die_with_parent

from .e2e.deployment import free_port

WRITE_BUDGET = 6000  # writes before a restart, well under the ~10,000 at which it slows down
START_TIMEOUT_S = 60.0  # a loaded 2-core machine needs ~5 s to start it
_databases = itertools.count()


def server_binary() -> str:
    """`secantusd-py`, the console script the SecantusDB wheel installs beside this Python."""
    return str(Path(sys.executable).with_name("secantusd-py"))


def with_database(uri: str, name: str) -> str:
    """`uri` naming database `name` (its hosts, credentials and options kept)."""
    scheme, rest = uri.split("://", 1)
    rest, _, options = rest.partition("?")
    hosts = rest.partition("/")[0]
    return f"{scheme}://{hosts}/{name}" + (f"?{options}" if options else "")


def database_name() -> str:
    """A database name no other test (of this or another test process) uses."""
    return f"feedapp_test_{os.getpid()}_{next(_databases)}"


class WireServer:
    """`secantusd-py` on a free loopback port over a storage directory under `directory`."""

    restartable = True

    def __init__(self, directory, port: int | None = None):
        self.directory = Path(directory)
        self.port = port or free_port()
        self.process = None
        self.generation = 0
        self.log_path = self.directory / "secantus.log"
        self._admin = None  # the tests' own client, while the server runs

    @property
    def storage(self) -> Path:
        return self.directory / f"storage-{self.generation}"

    def uri(self, database: str = "") -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = START_TIMEOUT_S) -> "WireServer":
        """Start the server (on the storage it had, if any) and wait until it answers ping."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [server_binary(), "--host", "127.0.0.1", "--port", str(self.port),
                 "--storage-path", str(self.storage), "--log-level", "WARNING"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        self._admin = self.client()
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        with self.client(timeout_ms=500) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"secantusd-py exited with {self.process.returncode}: {self.log_tail()}")
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    time.sleep(0.1)
        raise RuntimeError(f"secantusd-py did not answer ping within {timeout}s: {self.log_tail()}")

    def client(self, timeout_ms: int = 5000) -> pymongo.MongoClient:
        """A plain client of the server (the tests' own; feedapp builds its own)."""
        return pymongo.MongoClient(self.uri(), serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def writes(self) -> int:
        """Writes the server has counted since it started (inserts, updates, deletes)."""
        counters = self._admin.admin.command("serverStatus")["opcounters"]
        return counters["insert"] + counters["update"] + counters["delete"]

    def refresh_if_tired(self, budget: int = WRITE_BUDGET):
        """Restart on an empty storage directory once `budget` writes have gone through it."""
        if self.writes() >= budget:
            self.kill()
            shutil.rmtree(self.storage, ignore_errors=True)
            self.generation += 1
            self.start()

    def drop(self, database: str):
        self._admin.drop_database(database)

    def pause(self, timeout: float = 10.0):
        """SIGSTOP, and wait until every thread has stopped (on a loaded machine a thread may
        still answer a request for a while after the signal was sent)."""
        os.kill(self.process.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not self._stopped():
            if time.monotonic() > deadline:
                raise RuntimeError(f"secantusd-py (pid {self.process.pid}) did not stop within {timeout}s")
            time.sleep(0.01)

    def _stopped(self) -> bool:
        tasks = Path(f"/proc/{self.process.pid}/task")
        states = []
        for task in tasks.iterdir():
            try:
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:  # a thread that just ended
                continue
        return all(state == "T" for state in states)

    def resume(self):
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self):
        """SIGKILL: the server stops at once, as in a crash (WiredTiger recovers on start)."""
        self._close_admin()
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a stopped process would not die until resumed
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 15.0):
        """SIGTERM, then SIGKILL if it lingers."""
        self._close_admin()
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_admin(self):
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ExternalServer:
    """A MongoDB the tests did not start (TEST_MONGO_URI: a mongod, a replica set, Atlas):
    it is never restarted, paused or killed."""

    restartable = False

    def __init__(self, uri: str):
        self._uri = uri
        self._admin = self.client()

    def uri(self, database: str = "") -> str:
        return with_database(self._uri, database)

    def client(self, timeout_ms: int = 10_000) -> pymongo.MongoClient:
        return pymongo.MongoClient(self._uri, serverSelectionTimeoutMS=timeout_ms)

    def refresh_if_tired(self, budget: int = WRITE_BUDGET):
        """A real MongoDB does not tire."""

    def drop(self, database: str):
        self._admin.drop_database(database)

    def stop(self):
        """Not ours to stop: only our client closes."""
        self._admin.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

