"""A collection of the embedded store, with the part of pymongo's Collection feedapp uses."""
import itertools
import json
import re
import sqlite3

import bson
from bson import ObjectId
from pymongo import ReadPreference, ReturnDocument, WriteConcern
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError
from pymongo.results import DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from . import keycodec, plan
from .database import column_of, create_table, quote, translate_errors
from .documents import ABSENT_FIELD, apply_update, get_path, project, sort_documents, upsert_seed
from .matcher import matches

_CODEC = bson.CodecOptions(tz_aware=False)


def _decode(blob: bytes) -> dict:
    return bson.decode(blob, codec_options=_CODEC)


class Collection:
    def __init__(self, database, name: str, read_preference=None, write_concern=None):
        self.database = database
        self.name = name
        self.full_name = f"{database.name}.{name}"
        self.read_preference = read_preference or ReadPreference.PRIMARY
        self.write_concern = write_concern or WriteConcern()

    def with_options(self, read_preference=None, write_concern=None):
        """This collection with other options, kept and reported as pymongo does; one file has
        no secondaries and every commit is on it, so they change nothing else."""
        return Collection(self.database, self.name, read_preference or self.read_preference,
                          write_concern or self.write_concern)

    # --- reads ---------------------------------------------------------------------------

    def find(self, filter=None, projection=None, skip=0, limit=0, sort=None):
        return Cursor(self, _query(filter), projection, skip, limit, _sort_spec(sort))

    @translate_errors
    def find_one(self, filter=None, projection=None, sort=None):
        found = self._read(_query(filter), _sort_spec(sort), 0, 1)
        return project(found[0][2], projection) if found else None

    @translate_errors
    def count_documents(self, filter, skip=0, limit=0):
        query = _query(filter)
        connection = self.database.connection()
        schema = self.database.schema(connection, self.name)
        if schema is None:
            return 0
        condition = plan.where(query, schema.columns)
        if not condition.exact:
            return len(self._read(query, None, skip, limit))
        inner = f"SELECT 1 FROM {schema.table}{_where(condition)} LIMIT ? OFFSET ?"
        row = connection.execute(f"SELECT COUNT(*) FROM ({inner})", [*condition.params, limit or -1, skip])
        return row.fetchone()[0]

    def estimated_document_count(self):
        return self.count_documents({})

    @translate_errors
    def index_information(self) -> dict:
        connection = self.database.connection()
        schema = self.database.schema(connection, self.name)
        info = {"_id_": {"v": 2, "key": [("_id", 1)]}}
        for name, spec in (schema.indexes if schema else {}).items():
            info[name] = {"v": 2, **spec, "key": [tuple(pair) for pair in spec["key"]]}
        return info

    # --- writes --------------------------------------------------------------------------

    @translate_errors
    def insert_one(self, document):
        with self.database.writing() as connection:
            self._insert(connection, self._schema_for_write(connection), document)
        return InsertOneResult(document["_id"], True)

    @translate_errors
    def insert_many(self, documents, ordered=True):
        documents = list(documents)
        if not documents:
            raise TypeError("documents must be a non-empty list")
        errors = []
        with self.database.writing() as connection:
            schema = self._schema_for_write(connection)
            for position, document in enumerate(documents):
                try:
                    self._insert(connection, schema, document)
                except DuplicateKeyError as err:
                    errors.append({"index": position, "code": 11000, "errmsg": str(err), **(err.details or {})})
                    if ordered:
                        break
        if errors:  # MongoDB keeps the documents inserted before (ordered) or beside the errors
            inserted = (errors[0]["index"] if ordered else len(documents) - len(errors))
            raise BulkWriteError({"writeErrors": errors, "writeConcernErrors": [], "nInserted": inserted,
                                  "nUpserted": 0, "nMatched": 0, "nModified": 0, "nRemoved": 0, "upserted": []})
        return InsertManyResult([document["_id"] for document in documents], True)

    @translate_errors
    def update_one(self, filter, update, upsert=False):
        return self._update_result(self._modify(filter, update, upsert=upsert))

    @translate_errors
    def update_many(self, filter, update, upsert=False):
        return self._update_result(self._modify(filter, update, upsert=upsert, multi=True))

    @translate_errors
    def replace_one(self, filter, replacement, upsert=False):
        if any(str(key).startswith("$") for key in replacement):
            raise ValueError("replacement can not include $ operators")
        return self._update_result(self._modify(filter, replacement, upsert=upsert, replace=True))

    @translate_errors
    def find_one_and_update(self, filter, update, projection=None, sort=None, upsert=False,
                            return_document=ReturnDocument.BEFORE):
        outcome = self._modify(filter, update, upsert=upsert, sort=_sort_spec(sort))
        document = outcome.after if return_document else outcome.before
        return None if document is None else project(document, projection)

    @translate_errors
    def delete_one(self, filter):
        return DeleteResult({"n": len(self._delete(filter, limit=1)), "ok": 1.0}, True)

    @translate_errors
    def delete_many(self, filter):
        return DeleteResult({"n": len(self._delete(filter, limit=0)), "ok": 1.0}, True)

    @translate_errors
    def find_one_and_delete(self, filter, projection=None, sort=None):
        deleted = self._delete(filter, limit=1, sort=_sort_spec(sort))
        return project(deleted[0], projection) if deleted else None

    def create_index(self, keys, **options):
        from pymongo import IndexModel

        return self.create_indexes([IndexModel(keys, **options)])[0]

    @translate_errors
    def create_indexes(self, indexes):
        specs = [_index_spec(model) for model in indexes]
        with self.database.writing() as connection:
            for name, spec in specs:
                self._create_index(connection, name, spec)
        return [name for name, _ in specs]

    @translate_errors
    def drop(self):
        with self.database.writing() as connection:
            connection.execute(f"DROP TABLE IF EXISTS {quote('c:' + self.name)}")
            connection.execute("DELETE FROM _indexes WHERE collection = ?", (self.name,))

    # --- the machinery -------------------------------------------------------------------

    def _read(self, query, sort, skip, limit, connection=None) -> list:
        """[(rid, blob, document)] matching `query`, in `sort` order, after skip, up to limit
        (a negative limit is its absolute value, as in pymongo)."""
        limit = abs(limit)
        connection = connection or self.database.connection()
        schema = self.database.schema(connection, self.name)
        if schema is None:
            return []
        condition = plan.where(query, schema.columns)
        order = plan.order_by(sort, schema.columns) if sort else ""
        in_sql = condition.exact and order is not None
        sql = f"SELECT rid, doc FROM {schema.table}{_where(condition)}" + (f" ORDER BY {order}" if order else "")
        params = list(condition.params)
        if in_sql and (skip or limit):
            sql += " LIMIT ? OFFSET ?"
            params += [limit or -1, skip]
        rows = connection.execute(sql, params)
        try:
            found = ((rid, blob, _decode(blob)) for rid, blob in rows)
            if in_sql:
                return list(found)
            if not condition.exact:
                found = (row for row in found if matches(query, row[2]))
            if order is None:  # a sort field without an index: sort every match here
                found = iter(sort_documents(list(found), sort, document=lambda row: row[2]))
            return list(itertools.islice(found, skip, skip + limit if limit else None))
        finally:
            rows.close()

    def _schema_for_write(self, connection):
        schema = self.database.schema(connection, self.name)
        if schema is None:
            create_table(connection, self.name)
            schema = self.database.schema(connection, self.name)
        return schema

    def _keys(self, schema, document) -> list:
        keys = []
        for path in schema.columns:
            try:
                value = _indexed_value(document, path)
                keys.append(keycodec.encode(None if value is ABSENT_FIELD else value))
            except keycodec.Unindexable as err:
                raise WriteError(f"indexed field {path!r} of {self.full_name}: {err}", 2) from None
        return keys

    def _insert(self, connection, schema, document):
        if "_id" not in document:
            document["_id"] = ObjectId()  # as pymongo does, the caller's document learns its id
        columns = ", ".join([*schema.columns.values(), "doc"])
        marks = ", ".join("?" * (len(schema.columns) + 1))
        values = [*self._keys(schema, document), bson.encode(document)]
        try:
            connection.execute(f"INSERT INTO {schema.table} ({columns}) VALUES ({marks})", values)
        except sqlite3.IntegrityError as err:
            raise self._duplicate(schema, err, document) from None

    def _rewrite(self, connection, schema, rid, document):
        assignments = ", ".join(f"{column} = ?" for column in [*schema.columns.values(), "doc"])
        values = [*self._keys(schema, document), bson.encode(document), rid]
        try:
            connection.execute(f"UPDATE {schema.table} SET {assignments} WHERE rid = ?", values)
        except sqlite3.IntegrityError as err:
            raise self._duplicate(schema, err, document) from None

    def _modify(self, filter, change, upsert=False, multi=False, sort=None, replace=False):
        query = _query(filter)
        if not replace:
            apply_update({}, change)  # refuse a malformed update before touching anything
        outcome = _Outcome()
        with self.database.writing() as connection:
            schema = self._schema_for_write(connection)
            for rid, blob, document in self._read(query, sort, 0, 0 if multi else 1, connection):
                outcome.matched += 1
                outcome.before = _decode(blob)
                outcome.after = _replaced(document, change) if replace else apply_update(document, change)
                if bson.encode(outcome.after) != blob:
                    self._rewrite(connection, schema, rid, outcome.after)
                    outcome.modified += 1
            if outcome.matched == 0 and upsert:
                seed = upsert_seed(query)
                if replace:
                    outcome.after = _replaced({"_id": seed["_id"]} if "_id" in seed else {}, change)
                else:
                    outcome.after = apply_update(seed, change, inserting=True)
                self._insert(connection, schema, outcome.after)
                outcome.upserted, outcome.upserted_id = True, outcome.after["_id"]
        return outcome

    @staticmethod
    def _update_result(outcome):
        raw = {"n": outcome.matched or int(outcome.upserted), "nModified": outcome.modified,
               "updatedExisting": outcome.matched > 0, "ok": 1.0}
        if outcome.upserted:
            raw["upserted"] = outcome.upserted_id
        return UpdateResult(raw, True)

    def _delete(self, filter, limit, sort=None) -> list:
        with self.database.writing() as connection:
            schema = self.database.schema(connection, self.name)
            if schema is None:
                return []
            found = self._read(_query(filter), sort, 0, limit, connection)
            for start in range(0, len(found), 500):
                rids = [row[0] for row in found[start:start + 500]]
                connection.execute(f"DELETE FROM {schema.table} WHERE rid IN ({', '.join('?' * len(rids))})", rids)
        return [row[2] for row in found]

    def _create_index(self, connection, name, spec):
        schema = self._schema_for_write(connection)
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
                self._add_column(connection, schema, path)
        terms = ", ".join(f"{column_of(path)} {'DESC' if direction < 0 else 'ASC'}" for path, direction in spec["key"])
        unique = "UNIQUE " if spec.get("unique") else ""
        try:
            connection.execute(f"CREATE {unique}INDEX {quote('i:' + self.name + ':' + name)} ON {schema.table} ({terms})")
        except sqlite3.IntegrityError as err:
            raise DuplicateKeyError(f"E11000 duplicate key error building index {name} of {self.full_name}: {err}", 11000) from None
        connection.execute("INSERT INTO _indexes VALUES (?, ?, ?)", (self.name, name, json.dumps(spec)))

    def _add_column(self, connection, schema, path):
        column = column_of(path)
        connection.execute(f"ALTER TABLE {schema.table} ADD COLUMN {column} BLOB NOT NULL DEFAULT x'05'")
        schema = self.database.schema(connection, self.name)
        for rid, blob in connection.execute(f"SELECT rid, doc FROM {schema.table}").fetchall():
            self._rewrite(connection, schema, rid, _decode(blob))

    def _duplicate(self, schema, err, document) -> DuplicateKeyError:
        """MongoDB's E11000 error, naming the index and key SQLite found taken."""
        failed = str(err).split("failed: ", 1)[-1].split(", ")
        paths = [part.removeprefix(schema.raw_table + ".").removeprefix("f:") for part in failed]
        name, key = "_id_", [["_id", 1]]
        for index, spec in schema.indexes.items():
            if spec.get("unique") and sorted(p for p, _ in spec["key"]) == sorted(paths):
                name, key = index, spec["key"]
        pattern = {path: direction for path, direction in key}
        value = {path: None if get_path(document, path) is ABSENT_FIELD else get_path(document, path) for path in pattern}
        message = f"E11000 duplicate key error collection: {self.full_name} index: {name} dup key: {value}"
        return DuplicateKeyError(message, 11000, {"code": 11000, "errmsg": message, "keyPattern": pattern, "keyValue": value})


class _Outcome:
    def __init__(self):
        self.matched = self.modified = 0
        self.upserted = False  # an upserted _id may itself be None
        self.before = self.after = self.upserted_id = None


class Cursor:
    """pymongo's Cursor for one `find`: chain sort/skip/limit, then iterate (runs once)."""

    def __init__(self, collection, query, projection, skip, limit, sort):
        self._collection = collection
        self._query, self._projection = query, projection
        self._skip, self._limit, self._sort = skip, limit, sort
        self._results = None

    def sort(self, key_or_list, direction=None):
        self._sort = _sort_spec(key_or_list if direction is None else [(key_or_list, direction)])
        return self

    def skip(self, count: int):
        self._skip = count
        return self

    def limit(self, count: int):
        self._limit = count
        return self

    def batch_size(self, _size):
        return self

    def __iter__(self):
        if self._results is None:
            found = translate_errors(self._collection._read)(self._query, self._sort, self._skip, self._limit)
            self._results = iter([project(row[2], self._projection) for row in found])
        return self._results

    def __next__(self):
        return next(iter(self))

    def close(self):
        self._results = iter(())


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


def _query(filter) -> dict:
    if filter is None:
        return {}
    return filter if isinstance(filter, dict) else {"_id": filter}


def _sort_spec(sort):
    if sort is None:
        return None
    if isinstance(sort, str):
        return [(sort, 1)]
    pairs = list(sort.items()) if isinstance(sort, dict) else list(sort)
    for path, direction in pairs:
        if direction not in (1, -1):
            raise OperationFailure(f"sort direction {direction!r} of {path!r} is not supported by the embedded store")
    return pairs


def _where(condition) -> str:
    return f" WHERE {condition.sql}" if condition.sql else ""


def _replaced(document: dict, replacement: dict) -> dict:
    if "_id" in replacement and "_id" in document and replacement["_id"] != document["_id"]:
        raise WriteError("The _id field cannot be changed", 66)
    return {**({"_id": document["_id"]} if "_id" in document else {}), **replacement}


_SUPPORTED_INDEX_OPTIONS = {"key", "name", "unique", "expireAfterSeconds", "background"}


def _index_spec(model) -> tuple:
    document = dict(model.document if hasattr(model, "document") else model)
    unsupported = set(document) - _SUPPORTED_INDEX_OPTIONS
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
