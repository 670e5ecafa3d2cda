"""Keep each process's litemongo query index in step with other processes' writes.

litemongo keeps, per collection and per connection, an in-memory index of the documents (the
query planner's candidates). When another connection (another gunicorn worker) has committed
to the collection's SQLite file, it throws that index away and rebuilds it by decoding every
document: with 200,000 posts and a write every few milliseconds, workers spend their time
rebuilding. Here, SQLite triggers record the key of every inserted, updated or deleted
document in a change log inside the same file (so the record commits with the write), and a
connection that sees the file changed applies only the new records to its index. A connection
that fell behind the pruned log rebuilds, as litemongo would.

This reaches into litemongo 0.2.0's SQLite store (pinned in requirements.txt); `install`
leaves a store it does not recognise alone, which only costs the rebuilds again.
"""
import bson

CHANGES = "feedapp_changes"
KEEP = 100_000  # change records kept; a connection further behind rebuilds its index
_TRIGGERS = {
    "insert": "AFTER INSERT ON documents BEGIN INSERT INTO {t}(key) VALUES (NEW._id); END",
    "update": "AFTER UPDATE ON documents BEGIN INSERT INTO {t}(key) VALUES (NEW._id); END",
    "delete": "AFTER DELETE ON documents BEGIN INSERT INTO {t}(key) VALUES (OLD._id); END",
}


def install(store) -> bool:
    """Make `store` (a litemongo sqlite CollectionStore) refresh its query index incrementally."""
    if getattr(store, "_feedapp_synced", False):
        return True
    connection = getattr(store, "_connection", None)
    if connection is None or not hasattr(store, "_query_index_is_stale"):
        return False
    with connection:
        connection.execute(f"CREATE TABLE IF NOT EXISTS {CHANGES}(seq INTEGER PRIMARY KEY AUTOINCREMENT, key)")
        for op, body in _TRIGGERS.items():
            connection.execute(f"CREATE TRIGGER IF NOT EXISTS {CHANGES}_{op} {body.format(t=CHANGES)}")
    store._query_index_is_stale = _Refresher(store)  # noqa: SLF001 - see the module docstring
    store._feedapp_synced = True  # noqa: SLF001
    return True


def prune(store):
    """Drop change records all but the newest KEEP (run by writers, under the write lock)."""
    if getattr(store, "_feedapp_synced", False):
        with store._connection:  # noqa: SLF001
            store._connection.execute(  # noqa: SLF001
                f"DELETE FROM {CHANGES} WHERE seq <= (SELECT MAX(seq) FROM {CHANGES}) - ?", (KEEP,)
            )


class _Refresher:
    """Replaces CollectionStore._query_index_is_stale: True only when a rebuild is needed."""

    def __init__(self, store):
        self._store = store
        self._seen = None  # the last change record applied to this connection's index

    def __call__(self) -> bool:
        store = self._store
        connection = store._connection  # noqa: SLF001
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        if version == store._data_version and store._query_index is not None:  # noqa: SLF001
            return False
        store._data_version = version  # noqa: SLF001
        if store._query_index is None or self._seen is None:  # noqa: SLF001
            self._seen = self._newest(connection)  # the rebuild that follows covers up to here
            return True
        rows = connection.execute(
            f"SELECT seq, key FROM {CHANGES} WHERE seq > ? ORDER BY seq", (self._seen,)
        ).fetchall()
        if not rows:
            return False
        if rows[0][0] != self._seen + 1 and self._oldest(connection) > self._seen + 1:
            self._seen = self._newest(connection)  # pruned past us: rebuild
            return True
        self._apply(store, connection, dict.fromkeys(key for _, key in rows))
        self._seen = rows[-1][0]
        return False

    @staticmethod
    def _apply(store, connection, keys):
        index = store._query_index  # noqa: SLF001
        keys = list(keys)
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(connection.execute(f"SELECT _id, doc FROM documents WHERE _id IN ({marks})", chunk))
        options = store._codec_options  # noqa: SLF001
        for key in keys:
            if key in found:
                index.add(key, bson.decode(found[key], codec_options=options))
            else:
                index.remove(key)

    @staticmethod
    def _newest(connection) -> int:
        return connection.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {CHANGES}").fetchone()[0]

    @staticmethod
    def _oldest(connection) -> int:
        return connection.execute(f"SELECT COALESCE(MIN(seq), 0) FROM {CHANGES}").fetchone()[0]
