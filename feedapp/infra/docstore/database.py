"""The store's SQLite file: one connection per thread and process, schemas, transactions."""
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path

import bson
import pymongo.errors

CODEC = bson.CodecOptions(tz_aware=False)  # documents decode as pymongo's default: naive UTC datetimes
OFFLINE_MARKER = "OFFLINE"
BUSY_TIMEOUT_S = 30  # how long a statement waits for another writer before it fails
_INHERITED = []  # connections opened before a fork: kept, never closed (see _connection)


@dataclass
class Schema:
    """One collection as this connection last saw it."""

    table: str  # the quoted table name
    raw_table: str
    columns: dict = field(default_factory=dict)  # field path -> quoted column of its index key
    indexes: dict = field(default_factory=dict)  # name -> {"key": [[path, direction]], ...}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_of(path: str) -> str:
    return quote("f:" + path)


def translate_errors(method):
    """Report SQLite failures (locked past the timeout, I/O, disk full) as pymongo reports an
    unreachable server, so callers handle them as MongoDB failures."""

    @wraps(method)
    def translated(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as err:
            raise pymongo.errors.AutoReconnect(f"embedded store failed: {err}") from err

    return translated


class Database:
    """A pymongo-compatible Database kept in `path/<name>.sqlite3` (see the package doc).

    Creating `path/OFFLINE` makes every operation fail as an unreachable MongoDB does, until
    the file is removed (operators: maintenance; tests: store faults)."""

    def __init__(self, path, name: str):
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.name = name
        self._file = path / f"{name}.sqlite3"
        self._offline_marker = str(path / OFFLINE_MARKER)
        self._local = threading.local()

    def __getitem__(self, name: str):
        from .collection import Collection

        self._check_online()
        return Collection(self, name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    @translate_errors
    def command(self, command, *args, **kwargs):
        self._check_online()
        name = command if isinstance(command, str) else next(iter(command))
        if name != "ping":
            raise pymongo.errors.OperationFailure(f"command {name!r} is not supported by the embedded store")
        self.connection().execute("SELECT 1").fetchone()
        return {"ok": 1.0}

    @translate_errors
    def list_collection_names(self) -> list:
        rows = self.connection().execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'c:%'")
        return sorted(name[2:] for (name,) in rows)

    def close(self):
        """Close this thread's connection (the gunicorn master does so before it forks)."""
        local = self._local
        if getattr(local, "pid", None) == os.getpid():
            local.connection.close()
        self._local = threading.local()

    # --- for collections -------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if hasattr(local, "connection"):
                # Opened by the parent before a fork: closing it here could checkpoint or
                # unlock the parent's file, so it is left alone.
                _INHERITED.append(local.connection)
            local.connection = self._open()
            local.pid = os.getpid()
            local.version = None
            local.schemas = {}
        return local.connection

    @contextmanager
    def writing(self):
        """A write transaction: one writer at a time across every thread and process."""
        connection = self.connection()
        if connection.in_transaction:
            yield connection
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.execute("COMMIT")

    def schema(self, connection, name: str) -> Schema | None:
        """The collection's schema (None when it does not exist), reloaded after any change."""
        local = self._local
        version = connection.execute("PRAGMA schema_version").fetchone()[0]
        if version != local.version:
            local.version, local.schemas = version, {}
        if name not in local.schemas:
            local.schemas[name] = _load_schema(connection, name)
        return local.schemas[name]

    def schema_for_write(self, connection, name: str) -> Schema:
        """The collection's schema, its table created first when it does not exist."""
        schema = self.schema(connection, name)
        if schema is None:
            create_table(connection, name)
            schema = self.schema(connection, name)
        return schema

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._file, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True)
        _switch_to_wal(connection)
        connection.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes
        connection.execute("PRAGMA mmap_size = 1073741824")  # pages shared by every worker
        connection.execute(
            "CREATE TABLE IF NOT EXISTS _indexes (collection TEXT, name TEXT, spec TEXT, PRIMARY KEY (collection, name))"
        )
        return connection

    def _check_online(self):
        if os.path.exists(self._offline_marker):
            raise pymongo.errors.ServerSelectionTimeoutError(f"embedded store is offline ({self._offline_marker} exists)")


def _switch_to_wal(connection):
    """Put the file in WAL mode (readers never wait for the writer). While another process
    creates or switches the same file, SQLite answers "locked" here without calling its busy
    handler (it would deadlock), so the switch is retried until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.001
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _load_schema(connection, name: str) -> Schema | None:
    raw_table = "c:" + name
    if connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (raw_table,)).fetchone() is None:
        return None
    schema = Schema(quote(raw_table), raw_table)
    for row in connection.execute(f"PRAGMA table_info({schema.table})"):
        if row[1].startswith("f:"):
            schema.columns[row[1][2:]] = quote(row[1])
    for index, spec in connection.execute("SELECT name, spec FROM _indexes WHERE collection = ?", (name,)):
        schema.indexes[index] = json.loads(spec)
    return schema


def create_table(connection, name: str):
    """Create the collection's table (its `_id` key is unique, as MongoDB's _id index)."""
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {quote('c:' + name)} "
        f"(rid INTEGER PRIMARY KEY, {column_of('_id')} BLOB NOT NULL UNIQUE, doc BLOB NOT NULL)"
    )
