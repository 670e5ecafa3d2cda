"""A collection of the embedded store, with the part of pymongo's Collection feedapp uses."""
import itertools

import bson
from pymongo import ReadPreference, ReturnDocument, WriteConcern
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError
from pymongo.results import DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from . import indexing, plan
from .database import CODEC, quote, translate_errors
from .documents import apply_update, project, projector, sort_documents, upsert_seed
from .matcher import matches


def _decode(blob: bytes) -> dict:
    return bson.decode(blob, codec_options=CODEC)


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
        return indexing.information(self.database.schema(connection, self.name))

    # --- writes --------------------------------------------------------------------------

    @translate_errors
    def insert_one(self, document):
        with self.database.writing() as connection:
            schema = self.database.schema_for_write(connection, self.name)
            indexing.insert_row(connection, schema, document, self.full_name)
        return InsertOneResult(document["_id"], True)

    @translate_errors
    def insert_many(self, documents, ordered=True):
        documents = list(documents)
        if not documents:
            raise TypeError("documents must be a non-empty list")
        errors = []
        with self.database.writing() as connection:
            schema = self.database.schema_for_write(connection, self.name)
            for position, document in enumerate(documents):
                try:
                    indexing.insert_row(connection, schema, document, self.full_name)
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
        specs = [indexing.index_spec(model) for model in indexes]
        with self.database.writing() as connection:
            for name, spec in specs:
                indexing.create(self, connection, name, spec)
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

    def _modify(self, filter, change, upsert=False, multi=False, sort=None, replace=False):
        query = _query(filter)
        if not replace:
            apply_update({}, change)  # refuse a malformed update before touching anything
        outcome = _Outcome()
        with self.database.writing() as connection:
            schema = self.database.schema_for_write(connection, self.name)
            for rid, blob, document in self._read(query, sort, 0, 0 if multi else 1, connection):
                outcome.matched += 1
                outcome.before = _decode(blob)
                outcome.after = _replaced(document, change) if replace else apply_update(document, change)
                if bson.encode(outcome.after) != blob:
                    indexing.rewrite_row(connection, schema, rid, outcome.after, self.full_name)
                    outcome.modified += 1
            if outcome.matched == 0 and upsert:
                seed = upsert_seed(query)
                if replace:
                    outcome.after = _replaced({"_id": seed["_id"]} if "_id" in seed else {}, change)
                else:
                    outcome.after = apply_update(seed, change, inserting=True)
                indexing.insert_row(connection, schema, outcome.after, self.full_name)
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
            shape = projector(self._projection)  # checked before the query runs, as pymongo does
            found = translate_errors(self._collection._read)(self._query, self._sort, self._skip, self._limit)
            self._results = iter([shape(row[2]) for row in found])
        return self._results

    def __next__(self):
        return next(iter(self))

    def close(self):
        self._results = iter(())


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
