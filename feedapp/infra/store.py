"""Connect to the document store: a real MongoDB, or the embedded one.

`MONGO_URI=mongodb://...` (or `mongodb+srv://...`) talks to MongoDB through pymongo.
`MONGO_URI=memory://` is an in-process mongomock store (tests, throwaway runs), writes serialized.
No `MONGO_URI`: the embedded store (`feedapp.infra.docstore`: SQLite with real indexes under a
pymongo-shaped API) in DATA_DIR/store, shared by every worker; creating DATA_DIR/store/OFFLINE
makes it answer like an unreachable MongoDB until removed.
"""
import threading
from pathlib import Path

from .docstore import Database as EmbeddedDatabase
from .docstore.database import OFFLINE_MARKER

__all__ = ["close", "connect", "EmbeddedDatabase", "LockedDatabase", "OFFLINE_MARKER"]

# mongomock methods that write: run one at a time (see connect)
WRITE_METHODS = frozenset(
    {
        "insert_one", "insert_many", "update_one", "update_many", "replace_one",
        "delete_one", "delete_many", "find_one_and_update", "find_one_and_delete",
        "find_one_and_replace", "bulk_write", "create_index", "create_indexes", "drop",
        "drop_index",
    }
)


def connect(config):
    """Return a pymongo-compatible Database for `config` (see the module docstring)."""
    uri = config.mongo_uri
    if not uri:
        return EmbeddedDatabase(Path(config.data_dir) / "store", config.mongo_db)
    if uri.startswith("memory://"):
        import mongomock

        # mongomock's writes are not thread-safe (concurrent $inc updates get lost, two deletes
        # of one document raise KeyError), and gthread workers run requests on several threads.
        return LockedDatabase(mongomock.MongoClient(tz_aware=False)[config.mongo_db])
    from .mongo import connect_mongo

    return connect_mongo(config)


def close(db):
    """Close what `connect` opened: a MongoClient with its pool and monitor threads, or the
    embedded store's connection of this thread."""
    # pymongo's Database turns unknown attributes into collections: ask the class, not the object.
    if callable(getattr(type(db), "close", None)):
        db.close()
    else:
        db.client.close()


class LockedDatabase:
    """A pymongo-compatible database whose writes run one at a time (mongomock, in process)."""

    def __init__(self, db):
        self._db = db
        self._lock = threading.RLock()
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


class _LockedCollection:
    def __init__(self, collection, lock):
        self._collection = collection
        self._lock = lock

    def with_options(self, **_options):
        return self

    def __getattr__(self, name):
        attr = getattr(self._collection, name)
        if not callable(attr) or name not in WRITE_METHODS:
            return attr

        def locked(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return locked
