"""Store faults for one simulated worker: its view of the store fails, the store itself stays.

`StoreFaults` wraps a worker's pymongo-shaped database:
- `down()`: every call raises AutoReconnect (the store is unreachable before a write commits);
- `fail_after_next_write()`: the next write goes through, then the worker's calls fail until
  `heal()` (the store went away between a write's commit and what follows it);
- `ambiguous_next_write()`: the next write goes through and its caller gets AutoReconnect
  anyway, as from a connection lost before the reply (a retry then finds it applied).
"""
import threading

from pymongo.errors import AutoReconnect

WRITES = frozenset({
    "insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one",
    "delete_many", "find_one_and_update", "find_one_and_delete", "find_one_and_replace", "bulk_write",
})


class StoreFaults:
    def __init__(self):
        self._lock = threading.Lock()
        self._down = False
        self._after_write = None  # None | "fail" | "ambiguous"

    def down(self):
        with self._lock:
            self._down, self._after_write = True, None

    def fail_after_next_write(self):
        with self._lock:
            self._after_write = "fail"

    def ambiguous_next_write(self):
        with self._lock:
            self._after_write = "ambiguous"

    def heal(self):
        with self._lock:
            self._down, self._after_write = False, None

    @property
    def active(self) -> bool:
        return self._down or self._after_write is not None

    def call(self, method_name, method, *args, **kwargs):
        with self._lock:
            if self._down:
                raise AutoReconnect("simulated: store unreachable")
            after = self._after_write if method_name in WRITES else None
            if after is not None:
                self._after_write = None
        result = method(*args, **kwargs)
        if after == "fail":
            with self._lock:
                self._down = True
        elif after == "ambiguous":
            raise AutoReconnect("simulated: connection lost before the reply")
        return result


class FaultyDatabase:
    """A database whose every collection call goes through `faults`."""

    def __init__(self, db, faults: StoreFaults):
        self._db = db
        self._faults = faults
        self.name = getattr(db, "name", "feedapp")

    def __getitem__(self, name):
        return _FaultyCollection(self._db[name], self._faults)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def command(self, *args, **kwargs):
        return self._faults.call("command", self._db.command, *args, **kwargs)

    def close(self):
        self._db.close()


class _FaultyCollection:
    def __init__(self, collection, faults):
        self._collection = collection
        self._faults = faults

    def with_options(self, **options):
        return _FaultyCollection(self._collection.with_options(**options), self._faults)

    def __getattr__(self, name):
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            return self._faults.call(name, attr, *args, **kwargs)

        return call
