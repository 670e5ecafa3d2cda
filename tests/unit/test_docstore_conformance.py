"""Differential tests: generated collections, indexes, queries and writes, run on the embedded
store and on mongomock, must give the same answers.

Reads are compared with a small reference matcher written here (`matches`), itself checked
against mongomock on every example: the two may differ only where mongomock is known to
differ from MongoDB (booleans equal to 1/0 and NaN unequal to itself, see test_docstore.py's
BOOL_CASES and NAN_CASES), and there the reference follows MongoDB.
"""
import functools
import math
import os
import re
import tempfile
from datetime import datetime

import bson
import mongomock
from bson import ObjectId
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from feedapp.infra.docstore import Database

from .test_docstore import mongo_order

NAN = float("nan")
# Shrinking a failure of these large examples takes minutes on a busy machine: CI reports the
# first failing example as found; DOCSTORE_SHRINK=1 shrinks it to a small one.
PHASES = tuple(Phase) if os.environ.get("DOCSTORE_SHRINK") else (Phase.explicit, Phase.reuse, Phase.generate)
OID = [ObjectId(b"\x00" * 11 + b"\x01"), ObjectId(b"\x7f" * 12)]
DT = [datetime(2020, 1, 1), datetime(2021, 6, 1, 12, 0, 0, 5000)]
# scalar pools: mixed types, equal numbers of different types (1, 1.0), prefixes of strings
WRITE_POOL = [None, 0, 1, 1.0, 2, -1, 1.5, "", "a", "ab", "b", "B", "é", OID[0], OID[1], DT[0], DT[1]]
READ_POOL = WRITE_POOL + [True, False, NAN]
FIELDS = ["a", "b", "c"]
INDEX_CHOICES = [[("a", 1)], [("b", 1)], [("c", -1)], [("a", 1), ("c", -1)], [("b", -1), ("_id", 1)]]
SUBDOCS = [[1, 2], {"x": 1}, [], [{"x": 2}, {"y": 3}], "s", {"x": [1, {"z": 1}]}]
MISSING = object()

_store = {}


def fresh():
    """An empty embedded collection and an empty mongomock one (one file per run of the test)."""
    if "db" not in _store:
        _store["db"] = Database(tempfile.mkdtemp(prefix="docstore-conformance-"), "t")
        _store["n"] = 0
    _store["n"] += 1
    name = f"c{_store['n']}"
    return _store["db"][name], mongomock.MongoClient(tz_aware=False)["t"][name]


def teardown_module():
    if "db" in _store:
        _store.pop("db").close()


@st.composite
def documents(draw, pool, subdocs=SUBDOCS):
    count = draw(st.integers(0, 30))
    docs = []
    for i in range(count):
        doc = {"_id": i}
        for name in FIELDS:
            if draw(st.integers(0, 4)):  # missing one time in five
                doc[name] = draw(st.sampled_from(pool))
        if draw(st.booleans()):
            doc["d"] = draw(st.sampled_from(subdocs))
        doc["n"] = draw(st.integers(-3, 3))
        docs.append(doc)
    return docs


def leaf(pool, fields=(*FIELDS, "_id")):
    field = st.sampled_from(fields)
    value = st.sampled_from(pool)
    ops = st.one_of(
        st.builds(lambda f, v: {f: v}, field, value),
        st.builds(lambda f, o, v: {f: {o: v}}, field, st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), value),
        st.builds(lambda f, o, vs: {f: {o: vs}}, field, st.sampled_from(["$in", "$nin"]), st.lists(value, max_size=3)),
        st.builds(lambda f, e: {f: {"$exists": e}}, field, st.booleans()),
        st.builds(lambda f, r: {f: {"$regex": r}}, field, st.sampled_from(["^a", "b", "^$", "é", "A"])),
        st.builds(lambda lo, hi: {"a": {"$gt": lo, "$lte": hi}}, value, value),
    )
    return ops


def queries(pool):
    return st.recursive(
        leaf(pool) | st.just({}),
        lambda inner: st.one_of(
            st.builds(lambda qs: {"$and": qs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda qs: {"$or": qs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda x, y: {**x, **y}, inner, inner),
        ),
        max_leaves=4,
    )


sorts = st.one_of(
    st.none(),
    st.builds(lambda keys, dirs: [*zip(keys, dirs), ("_id", dirs[-1])],
              st.lists(st.sampled_from(FIELDS), min_size=0, max_size=3, unique=True),
              st.lists(st.sampled_from([1, -1]), min_size=4, max_size=4)),
)
projections = st.sampled_from([None, {"a": 1}, {"a": 0}, ["b", "c"], {"_id": 0, "a": 1}, {"d": 0, "b": 0}, {"n": 1, "_id": 0}])


# --- the reference ------------------------------------------------------------------------------


def key(value):
    return mongo_order(None if value is MISSING else value)


def _is_nan(value):
    return isinstance(value, float) and math.isnan(value)


def _compare(value, op, operand):
    """MongoDB's matcher on one scalar (or missing) value."""
    if op == "$eq":
        return key(value) == key(operand)
    if op == "$ne":
        return key(value) != key(operand)
    if op == "$in":
        return any(key(value) == key(v) for v in operand)
    if op == "$nin":
        return all(key(value) != key(v) for v in operand)
    if op == "$exists":
        return (value is not MISSING) == bool(operand)
    if op == "$regex":
        return isinstance(value, str) and re.search(operand, value) is not None
    # ranges: within the operand's type only; null operands match null/missing for $gte/$lte
    if operand is None:
        return op in ("$gte", "$lte") and key(value) == key(None)
    if value is MISSING or key(value)[0] != key(operand)[0]:
        return False
    if _is_nan(value) or _is_nan(operand):  # NaN equals NaN; every other comparison is false
        return op in ("$gte", "$lte") and _is_nan(value) and _is_nan(operand)
    a, b = key(value), key(operand)
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def matches(query, doc):
    for name, condition in query.items():
        if name == "$and":
            ok = all(matches(q, doc) for q in condition)
        elif name == "$or":
            ok = any(matches(q, doc) for q in condition)
        else:
            value = doc.get(name, MISSING)
            if isinstance(condition, dict):
                ok = all(_compare(value, op, operand) for op, operand in condition.items())
            else:
                ok = _compare(value, "$eq", condition)
        if not ok:
            return False
    return True


def ordered(docs, sort):
    def compare(x, y):
        for name, direction in sort:
            kx, ky = key(x.get(name, MISSING)), key(y.get(name, MISSING))
            if kx != ky:
                return direction if kx > ky else -direction
        return 0

    return sorted(docs, key=functools.cmp_to_key(compare))


def _special(value):
    return isinstance(value, bool) or _is_nan(value)


def _query_values(query):
    for name, condition in query.items():
        if name in ("$and", "$or"):
            for part in condition:
                yield from _query_values(part)
        elif isinstance(condition, dict):
            for operand in condition.values():
                yield from operand if isinstance(operand, list) else [operand]
        else:
            yield condition


def mongomock_may_differ(query, doc):
    # mongomock matches {a: 1} against true (and {a: true} against 1) and never matches NaN
    # with NaN (Python's == on bool/float); MongoDB does neither. Only such documents may differ.
    if any(_special(v) for v in doc.values()):
        return True
    # mongomock's {f: {$gte: null}} and {f: {$lte: null}} miss documents without f; MongoDB's
    # match them, as {f: null} does (null comparisons are null equality, missing included).
    if re.search(r"'\$[gl]te': None", repr(query)):
        return True
    return any(_special(v) for v in _query_values(query)) and any(
        v in (0, 1) and not isinstance(v, bool) for v in doc.values() if isinstance(v, (int, float)))


def project(reference_collection, docs, projection):
    """mongomock's projection of `docs` (in order), for the simple projections used here."""
    if projection is None:
        return docs
    hide_id = isinstance(projection, dict) and projection.get("_id", 1) == 0
    with_id = {**projection, "_id": 1} if isinstance(projection, dict) else projection
    found = reference_collection.find({"_id": {"$in": [d["_id"] for d in docs]}}, with_id)
    by_id = {d["_id"]: d for d in found}
    return [{k: v for k, v in by_id[d["_id"]].items() if not (hide_id and k == "_id")} for d in docs]


def same(x, y):
    """Documents equal as BSON values (NaN equal to NaN, 1 == 1.0 but not == True)."""
    if isinstance(x, dict) and isinstance(y, dict):
        return set(x) == set(y) and all(same(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y))
    if isinstance(x, (dict, list)) or isinstance(y, (dict, list)):
        return False
    return key(x) == key(y) and type(x) is type(y)


def same_docs(xs, ys):
    return len(xs) == len(ys) and all(same(x, y) and set(x) == set(y) for x, y in zip(xs, ys))


# --- reads --------------------------------------------------------------------------------------


@settings(max_examples=120, derandomize=True, deadline=None, phases=PHASES, report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(documents(WRITE_POOL), st.lists(st.sampled_from(INDEX_CHOICES), max_size=3, unique_by=str),
       st.lists(st.tuples(queries(WRITE_POOL), sorts, st.integers(0, 5), st.integers(0, 10), projections)
                .filter(lambda read: not re.search(r"'\$[gl]te': None", repr(read[0]))),
                min_size=1, max_size=4))
def test_reads_answer_as_mongodb(docs, indexes, reads):
    """Values and queries where mongomock's matcher is MongoDB's (no booleans, NaN, or
    $gte/$lte null: the store's matcher for fields without an index is mongomock's)."""
    check_reads(docs, indexes, reads)


@settings(max_examples=80, derandomize=True, deadline=None, phases=PHASES, report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(documents(READ_POOL), st.lists(st.sampled_from(INDEX_CHOICES), max_size=3, unique_by=str),
       st.lists(st.tuples(queries(READ_POOL), sorts, st.integers(0, 5), st.integers(0, 10), projections),
                min_size=1, max_size=4))
def test_reads_of_booleans_nan_and_null_ranges_answer_as_mongodb(docs, indexes, reads):
    """Every value and query of the grammar, checked against the reference matcher."""
    check_reads(docs, indexes, reads)


def seeded(docs, indexes):
    """(store, reference) both holding docs; the store also has the indexes."""
    store, reference = fresh()
    if docs:
        store.insert_many([dict(d) for d in docs])
        reference.insert_many([dict(d) for d in docs])
    for index in indexes:
        store.create_index(index)
    return store, reference


def check_reads(docs, indexes, reads):
    store, reference = seeded(docs, indexes)
    for query, sort, skip, limit, projection in reads:
        expected = [d for d in docs if matches(query, d)]
        # the reference matcher agrees with mongomock but where mongomock is known wrong
        by_mongomock = {d["_id"] for d in reference.find(query)}
        assert all(mongomock_may_differ(query, d) for d in docs
                   if (d["_id"] in by_mongomock) != matches(query, d)), (query, by_mongomock)

        count = len(expected[skip:skip + limit if limit else None])
        assert store.count_documents(query) == len(expected), query
        assert store.count_documents(query, skip=skip, limit=limit) == count, (query, skip, limit)

        cursor = store.find(query, projection)
        if sort:
            cursor = cursor.sort(sort)
        found = list(cursor.skip(skip).limit(limit))
        if sort:
            page = ordered(expected, sort)[skip:skip + limit if limit else None]
            assert same_docs(found, project(reference, page, projection)), (query, sort, skip, limit, projection)
            first = store.find_one(query, projection, sort=sort)
            assert same_docs([] if first is None else [first], project(reference, ordered(expected, sort)[:1], projection))
        else:  # no order: any `count` of the matches
            assert len(found) == count, (query, skip, limit)
            everything = project(reference, expected, projection)
            for doc in found:
                assert any(same(doc, e) for e in everything), (query, doc)
            one = store.find_one(query)
            assert (one is None) == (not expected) and (one is None or any(same(one, e) for e in expected))


# --- writes -------------------------------------------------------------------------------------

updates = st.one_of(
    st.builds(lambda f, v: {"$set": {f: v}}, st.sampled_from(FIELDS + ["e"]), st.sampled_from(WRITE_POOL)),
    st.builds(lambda v: {"$inc": {"n": v}}, st.sampled_from([1, -2, 0, 2.5])),
    st.builds(lambda f: {"$unset": {f: ""}}, st.sampled_from(FIELDS + ["d", "zz"])),
    # mongomock's $min/$max compare with Python's < (TypeError across types, None included):
    # here numbers only; test_docstore.py checks mixed types against MongoDB's order
    st.builds(lambda op, v: {op: {"n": v}}, st.sampled_from(["$min", "$max"]), st.sampled_from([-1, 0, 1.5, 3, 2])),
    st.builds(lambda f, v, g, w: {"$set": {f: v}, "$setOnInsert": {g: w}}, st.sampled_from(FIELDS),
              st.sampled_from(WRITE_POOL), st.sampled_from(["s1", "s2"]), st.sampled_from(WRITE_POOL)),
    st.builds(lambda f, v: {"$set": {f"d.{f}": v}}, st.sampled_from(["x", "y"]), st.integers(0, 2)),
)


def no_null_ranges(query) -> bool:
    """mongomock's $gte/$lte null miss documents without the field (see mongomock_may_differ):
    the reference of the write tests would pick other documents than MongoDB does."""
    return not re.search(r"'\$[gl]te': None", repr(query))


write_queries = queries(WRITE_POOL).filter(no_null_ranges)
# (mongomock copies an operator-valued _id of the filter into a replacement: _id equality only)
id_filters = st.builds(lambda i, extra: {"_id": i, **extra}, st.integers(0, 35),
                       st.one_of(st.just({}), leaf(WRITE_POOL, FIELDS))).filter(no_null_ranges)
# mongomock seeds an upsert from top-level equalities only, MongoDB from those in a top-level
# $and too (test_docstore.py checks that): upserts here use filters without $and/$or.
upsert_filters = id_filters | leaf([v for v in WRITE_POOL if v is not None], FIELDS)
write_ops = st.one_of(
    st.tuples(st.just("update_one"), id_filters, updates, st.booleans()),
    st.tuples(st.just("update_many"), write_queries, updates, st.just(False)),
    st.tuples(st.just("update_many"), upsert_filters, updates, st.just(True)),
    st.tuples(st.just("replace_one"), id_filters,
              st.builds(lambda v, n: {"a": v, "n": n}, st.sampled_from(WRITE_POOL), st.integers(0, 3)), st.booleans()),
    st.tuples(st.just("delete_one"), id_filters),
    st.tuples(st.just("delete_many"), write_queries),
    st.tuples(st.just("find_one_and_update"), write_queries, updates, st.just(False), sorts.filter(bool),
              st.booleans()),
    st.tuples(st.just("find_one_and_update"), upsert_filters, updates, st.just(True), sorts.filter(bool),
              st.booleans()),
    st.tuples(st.just("find_one_and_delete"), write_queries, sorts.filter(bool)),
)


def _run(collection, op):
    name, query, *rest = op
    method = getattr(collection, name)
    if name in ("update_one", "update_many", "replace_one"):
        change, upsert = rest
        result = method(query, change, upsert=upsert)
        return (result.matched_count, result.modified_count, result.upserted_id is not None,
                _anonymous(result.upserted_id))
    if name in ("delete_one", "delete_many"):
        return method(query).deleted_count
    if name == "find_one_and_update":
        change, upsert, sort, after = rest
        return _anonymous(method(query, change, sort=sort, upsert=upsert,
                                 return_document=ReturnDocument.AFTER if after else ReturnDocument.BEFORE))
    (sort,) = rest
    return method(query, sort=sort)


def _anonymous(value):
    """Upserts without an _id in the filter get a new ObjectId from each store: hide it."""
    if isinstance(value, ObjectId) and value not in OID:
        return "new-id"
    if isinstance(value, dict):
        return {k: _anonymous(v) for k, v in value.items()}
    return value


def _state(collection):
    return sorted((_anonymous(d) for d in collection.find()),
                  key=lambda d: repr(d["_id"]) + repr(sorted(d.items(), key=lambda item: item[0])))


@settings(max_examples=250, derandomize=True, deadline=None, phases=PHASES, report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# (mongomock ignores a $set of "d.x" where d is a string; MongoDB refuses it with WriteError
# 28, as the store does, see test_docstore.py: no scalar d here)
@given(documents(WRITE_POOL, [d for d in SUBDOCS if isinstance(d, (dict, list))]),
       st.lists(st.sampled_from(INDEX_CHOICES), max_size=3, unique_by=str),
       st.lists(write_ops, min_size=1, max_size=5))
def test_writes_answer_as_mongodb(docs, indexes, ops):
    store, reference = seeded(docs, indexes)
    for op in ops:
        outcomes = []
        before = {d["_id"]: bson.encode(d) for d in reference.find()}
        store_before = _state(store)
        for collection in (store, reference):
            try:
                outcomes.append(("ok", _run(collection, op)))
            except PyMongoError:  # both must refuse (WriteError, OperationFailure)
                outcomes.append(("error", None))
            except ValueError:
                # mongomock's $set of "d.x" where d is an array; MongoDB refuses it with
                # WriteError 28 ("Cannot create field 'x' in element {d: [...]}")
                assert collection is reference
                outcomes.append(("error", None))
        (s_kind, s_value), (r_kind, r_value) = outcomes
        assert s_kind == r_kind, (op, outcomes)
        if s_kind == "error":
            # A refused write changes nothing in the store. (MongoDB's update_many keeps the
            # documents it updated before the failing one, in an unspecified order; the store's
            # all-or-nothing is the outcome of the failing one coming first.) The reference
            # may be partly updated now: the example ends here.
            assert same_docs(_state(store), store_before), op
            return
        if s_kind == "ok" and op[0] in ("update_one", "update_many", "replace_one"):
            # MongoDB counts a document as modified when its BSON changed, a change of type
            # included ($set 1 -> 1.0: SetNode::updateExistingElement compares with
            # binaryEqualValues); mongomock compares with Python's ==, 1 == 1.0, so the
            # reference's count is taken from its documents before and after.
            after = {d["_id"]: bson.encode(d) for d in reference.find()}
            changed = sum(1 for i, blob in before.items() if i in after and after[i] != blob)
            r_value = (r_value[0], changed, *r_value[2:])
        if s_kind == "ok":
            if isinstance(s_value, dict) or isinstance(r_value, dict):
                assert same_docs([s_value], [r_value]), (op, outcomes)
            else:
                assert s_value == r_value, (op, outcomes)
        ours, theirs = _state(store), _state(reference)
        assert same_docs(ours, theirs), (op, [(x, y) for x, y in zip(ours, theirs) if not same_docs([x], [y])]
                                         or (ours, theirs))
