"""A collection's indexes: their specs, their SQLite indexes over key columns, and the rows
that keep those columns (each indexed field's `keycodec` key beside the document's BSON).

A unique index that SQLite finds violated is reported as MongoDB's E11000 `DuplicateKeyError`,
naming the index and the key taken."""
import json
import re
import sqlite3

import bson
from pymongo.errors import DuplicateKeyError, OperationFailure, WriteError

from . import keycodec
from .database import CODEC, column_of, quote
from .documents import ABSENT_FIELD, get_path

_SUPPORTED_OPTIONS = {"key", "name", "unique", "expireAfterSeconds", "background"}


def index_spec(model) -> tuple:
    """(name, spec) of a pymongo IndexModel (or its document); OperationFailure for anything
    this store cannot keep as MongoDB would."""
    document = dict(model.document if hasattr(model, "document") else model)
    unsupported = set(document) - _SUPPORTED_OPTIONS
    if unsupported:
        raise OperationFailure(f"index options {sorted(unsupported)} are not supported by the embedded store")
    key = [[path, direction] for path, direction in dict(document["key"]).items()]
    for path, direction in key:
        if direction not in (1, -1) or not re.fullmatch(r"[^$\x00]+", path):
            raise OperationFailure(f"index key {path!r}: {direction!r} is not supported by the embedded store")
    spec = {"key": key}
    if document.get("unique"):
        spec["unique"] = True
    if "expireAfterSeconds" in document:  # kept and reported; documents are not expired here
        spec["expireAfterSeconds"] = document["expireAfterSeconds"]
    return document["name"], spec


def information(schema) -> dict:
    """pymongo's `index_information()` of a collection (`schema` None: it does not exist)."""
    info = {"_id_": {"v": 2, "key": [("_id", 1)]}}
    for name, spec in (schema.indexes if schema else {}).items():
        info[name] = {"v": 2, **spec, "key": [tuple(pair) for pair in spec["key"]]}
    return info


def create(collection, connection, name: str, spec: dict):
    """Create index `name` of `collection` inside the caller's write transaction, as MongoDB
    does: nothing when the same index exists, OperationFailure when it differs or its key is
    taken by another name, DuplicateKeyError when a unique key is already held twice."""
    database = collection.database
    schema = database.schema_for_write(connection, collection.name)
    existing = schema.indexes.get(name)
    if existing is not None:
        if existing != spec:
            raise OperationFailure(f"An index named {name!r} already exists with different options", 86)
        return
    for other, other_spec in schema.indexes.items():
        if other_spec["key"] == spec["key"]:
            raise OperationFailure(f"Index already exists with a different name: {other}", 85)
    for path, _ in spec["key"]:
        if path not in schema.columns:
            _add_column(collection, connection, schema, path)
    terms = ", ".join(f"{column_of(path)} {'DESC' if direction < 0 else 'ASC'}" for path, direction in spec["key"])
    unique = "UNIQUE " if spec.get("unique") else ""
    try:
        connection.execute(f"CREATE {unique}INDEX {quote('i:' + collection.name + ':' + name)} ON {schema.table} ({terms})")
    except sqlite3.IntegrityError as err:
        raise DuplicateKeyError(f"E11000 duplicate key error building index {name} of {collection.full_name}: {err}", 11000) from None
    connection.execute("INSERT INTO _indexes VALUES (?, ?, ?)", (collection.name, name, json.dumps(spec)))


def _add_column(collection, connection, schema, path):
    """Add the key column of `path` and fill it in for every document."""
    connection.execute(f"ALTER TABLE {schema.table} ADD COLUMN {column_of(path)} BLOB NOT NULL DEFAULT x'05'")
    schema = collection.database.schema(connection, collection.name)
    for rid, blob in connection.execute(f"SELECT rid, doc FROM {schema.table}").fetchall():
        rewrite_row(connection, schema, rid, bson.decode(blob, codec_options=CODEC), collection.full_name)


def insert_row(connection, schema, document, full_name: str):
    """Insert `document`'s row; DuplicateKeyError when it takes a unique key already held."""
    if "_id" not in document:
        document["_id"] = bson.ObjectId()  # as pymongo does, the caller's document learns its id
    columns = ", ".join([*schema.columns.values(), "doc"])
    marks = ", ".join("?" * (len(schema.columns) + 1))
    values = [*_keys(schema, document, full_name), bson.encode(document)]
    try:
        connection.execute(f"INSERT INTO {schema.table} ({columns}) VALUES ({marks})", values)
    except sqlite3.IntegrityError as err:
        raise _duplicate(schema, err, document, full_name) from None


def rewrite_row(connection, schema, rid, document, full_name: str):
    """Replace row `rid` by `document`'s; DuplicateKeyError when it takes a unique key already held."""
    assignments = ", ".join(f"{column} = ?" for column in [*schema.columns.values(), "doc"])
    values = [*_keys(schema, document, full_name), bson.encode(document), rid]
    try:
        connection.execute(f"UPDATE {schema.table} SET {assignments} WHERE rid = ?", values)
    except sqlite3.IntegrityError as err:
        raise _duplicate(schema, err, document, full_name) from None


def _keys(schema, document, full_name: str) -> list:
    keys = []
    for path in schema.columns:
        try:
            value = _indexed_value(document, path)
            keys.append(keycodec.encode(None if value is ABSENT_FIELD else value))
        except keycodec.Unindexable as err:
            raise WriteError(f"indexed field {path!r} of {full_name}: {err}", 2) from None
    return keys


def _indexed_value(document, path):
    """The value an index on `path` holds for `document`; Unindexable when an array lies on
    the path (MongoDB would index every element: a multikey index, which this store has not)."""
    value = document
    for part in path.split("."):
        if isinstance(value, list):
            raise keycodec.Unindexable(f"an array lies on the indexed path {path!r}")
        if not isinstance(value, dict) or part not in value:
            return ABSENT_FIELD
        value = value[part]
    return value


def _duplicate(schema, err, document, full_name: str) -> DuplicateKeyError:
    """MongoDB's E11000 error, naming the index and key SQLite found taken."""
    failed = str(err).split("failed: ", 1)[-1].split(", ")
    paths = [part.removeprefix(schema.raw_table + ".").removeprefix("f:") for part in failed]
    name, key = "_id_", [["_id", 1]]
    for index, spec in schema.indexes.items():
        if spec.get("unique") and sorted(p for p, _ in spec["key"]) == sorted(paths):
            name, key = index, spec["key"]
    pattern = {path: direction for path, direction in key}
    value = {path: None if get_path(document, path) is ABSENT_FIELD else get_path(document, path) for path in pattern}
    message = f"E11000 duplicate key error collection: {full_name} index: {name} dup key: {value}"
    return DuplicateKeyError(message, 11000, {"code": 11000, "errmsg": message, "keyPattern": pattern, "keyValue": value})
