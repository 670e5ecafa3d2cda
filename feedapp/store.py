"""Connect to the document store: a real MongoDB, or the embedded file-backed one.

`MONGO_URI=mongodb://...` (or `mongodb+srv://...`) talks to MongoDB through pymongo.
`MONGO_URI=memory://` is an in-process mongomock store (tests, throwaway runs), writes serialized.
No `MONGO_URI`: litemongo's SQLite-backed store under DATA_DIR/store, shared by every worker;
creating DATA_DIR/store/OFFLINE makes it answer like an unreachable MongoDB until removed.

litemongo evaluates each write in Python (read, check unique indexes, write back), which is
atomic inside one process but not across gunicorn workers. `EmbeddedDatabase` therefore runs
every write of the embedded store under one cross-process file lock, so `$inc` counters and
unique indexes are exact across workers exactly as they are on MongoDB. Each thread gets its
own litemongo client because SQLite connections must stay on the thread that opened them.
"""
import fcntl
import itertools
import os
import sqlite3
import threading
from contextlib import contextmanager
from functools import wraps
from pathlib import Path

import pymongo
import pymongo.errors

from . import store_sync

WRITE_METHODS = frozenset(
    {
        "insert_one", "insert_many", "update_one", "update_many", "replace_one",
        "delete_one", "delete_many", "find_one_and_update", "find_one_and_delete",
        "find_one_and_replace", "bulk_write", "create_index", "create_indexes", "drop",
        "drop_index",
    }
)


OFFLINE_MARKER = "OFFLINE"
PRUNE_EVERY = 1000  # writes between two prunings of the embedded store's change log
_WRITES = itertools.count(1)


def connect(config):
    """Return a pymongo-compatible Database for `config` (see the module docstring)."""
    uri = config.mongo_uri
    if not uri:
        return EmbeddedDatabase(Path(config.data_dir) / "store", config.mongo_db)
    if uri.startswith("memory://"):
        import mongomock

        # mongomock's writes are not thread-safe (concurrent $inc updates get lost, two deletes
        # of one document raise KeyError), and gthread workers run requests on several threads.
        return LockedDatabase(mongomock.MongoClient(tz_aware=False)[config.mongo_db], ThreadLock())
    client = pymongo.MongoClient(
        uri,
        tz_aware=False,
        retryWrites=True,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        socketTimeoutMS=10000,
        appname="feedapp",
    )
    return client.get_default_database(default=config.mongo_db)


class FileLock:
    """A lock held by one thread of one process at a time (threading lock + flock)."""

    def __init__(self, path: Path):
        self._path = path
        self._thread_lock = threading.RLock()
        self._fd = None
        self._pid = None
        self._depth = 0

    @contextmanager
    def held(self):
        with self._thread_lock:
            if self._depth == 0:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _descriptor(self):
        # A descriptor inherited through fork shares its lock with the parent: open our own.
        if self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd


class ThreadLock:
    """FileLock's interface for a store that lives inside one process."""

    def __init__(self):
        self._lock = threading.RLock()

    @contextmanager
    def held(self):
        with self._lock:
            yield


class LockedDatabase:
    """A pymongo-compatible database whose writes run one at a time under `lock`."""

    def __init__(self, db, lock):
        self._db = db
        self._lock = lock
        self.name = db.name

    def __getitem__(self, name):
        return _LockedCollection(self._db[name], self._lock)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def command(self, *args, **kwargs):
        return self._db.command(*args, **kwargs)

    def list_collection_names(self):
        return self._db.list_collection_names()

    def close(self):
        self._db.client.close()


class EmbeddedDatabase:
    """A litemongo database whose writes are serialized across processes (see module doc)."""

    def __init__(self, path: Path, name: str):
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        self.name = name
        self._lock = FileLock(path / ".write.lock")
        self._local = threading.local()
        self._offline_marker = str(path / OFFLINE_MARKER)

    def _database(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            import litemongo

            local.client = litemongo.connect(str(self._path))
            local.pid = os.getpid()
        return local.client[self.name]

    def __getitem__(self, name):
        self._check_online()
        collection = self._database()[name]
        store_sync.install(collection._store)  # noqa: SLF001 - see feedapp.store_sync
        return _LockedCollection(collection, self._lock, prune=store_sync.prune)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def command(self, *args, **kwargs):
        self._check_online()
        return self._database().command(*args, **kwargs)

    def list_collection_names(self):
        return self._database().list_collection_names()

    def _check_online(self):
        # An operator takes the embedded store offline (maintenance, a failing disk) by creating
        # store/OFFLINE: every operation then fails as a MongoDB that cannot be reached does.
        if os.path.exists(self._offline_marker):
            raise pymongo.errors.ServerSelectionTimeoutError(f"embedded store is offline ({self._offline_marker} exists)")

    def close(self):
        """Close this thread's connection (the gunicorn master does so before it forks)."""
        client = getattr(self._local, "client", None)
        if client is not None and self._local.pid == os.getpid():
            client.close()
        self._local = threading.local()


class _LockedCollection:
    def __init__(self, collection, lock, prune=None):
        self._collection = collection
        self._lock = lock
        self._prune = prune

    def __getattr__(self, name):
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr
        if name not in WRITE_METHODS:
            return _as_pymongo_errors(attr)

        @wraps(attr)
        def locked(*args, **kwargs):
            with self._lock.held():
                result = attr(*args, **kwargs)
                if self._prune is not None and next(_WRITES) % PRUNE_EVERY == 0:
                    self._prune(self._collection._store)  # noqa: SLF001
                return result

        return _as_pymongo_errors(locked)


def _as_pymongo_errors(method):
    """Report the embedded store's SQLite failures (locked, disk I/O, disk full) as pymongo
    reports an unreachable server, so every caller handles them as MongoDB failures."""

    @wraps(method)
    def translated(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as err:
            raise pymongo.errors.AutoReconnect(f"embedded store failed: {err}") from err

    return translated
