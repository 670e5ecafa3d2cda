"""Check one document against a filter in Python: the part of a query SQL could not decide.

Comparisons of scalar values answer as MongoDB does, through the same index keys (keycodec) as
the SQL side, so a query answers the same with or without an index: types never compare across
brackets (`true` is not `1`), NaN equals NaN and no range reaches it, and `$gte`/`$lte` null
are null equality (a missing field included). Anything else (arrays, subdocuments, `$regex`,
`$elemMatch`, `$size`, `$type`, ...) is decided by mongomock's matcher.
"""
import math

from mongomock.filtering import filter_applies

from . import keycodec
from .documents import ABSENT_FIELD

_OURS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"}
_COMPLEX = object()  # an array or a document on the path: mongomock decides


def matches(query: dict, doc: dict) -> bool:
    """Whether `doc` matches `query` (see the module docstring)."""
    for name, condition in query.items():
        if name == "$and":
            ok = all(matches(q, doc) for q in condition)
        elif name == "$or":
            ok = any(matches(q, doc) for q in condition)
        elif name == "$nor":
            ok = not any(matches(q, doc) for q in condition)
        elif name.startswith("$"):
            ok = filter_applies({name: condition}, doc)
        else:
            ok = _field(doc, name, condition)
        if not ok:
            return False
    return True


def _field(doc, path, condition) -> bool:
    operators = condition if _is_operators(condition) else {"$eq": condition}
    value = _scalar_at(doc, path)
    if value is not _COMPLEX and set(operators) <= _OURS:
        try:
            return all(_holds(op, operand, value) for op, operand in operators.items())
        except keycodec.Unindexable:
            pass  # a value or operand no index key represents (regex, bytes, huge integers, ...)
    return filter_applies({path: condition}, doc)


def _is_operators(condition) -> bool:
    return isinstance(condition, dict) and bool(condition) and all(str(k).startswith("$") for k in condition)


def _scalar_at(doc, path):
    value = doc
    for part in path.split("."):
        if isinstance(value, list):
            return _COMPLEX
        if not isinstance(value, dict) or part not in value:
            return ABSENT_FIELD
        value = value[part]
    return _COMPLEX if isinstance(value, (list, dict)) else value


def _holds(op, operand, value) -> bool:
    if op == "$exists":
        return bool(operand) == (value is not ABSENT_FIELD)
    if op in ("$in", "$nin"):
        if not isinstance(operand, (list, tuple)):
            raise keycodec.Unindexable("$in needs an array")
        found = any(_equal(value, item) for item in operand)
        return found if op == "$in" else not found
    if op == "$eq":
        return _equal(value, operand)
    if op == "$ne":
        return not _equal(value, operand)
    return _compare(op, operand, value)


def _equal(value, operand) -> bool:
    if operand is None:
        return value is ABSENT_FIELD or value is None
    if value is ABSENT_FIELD or isinstance(operand, (list, dict)):
        if isinstance(operand, (list, dict)):
            raise keycodec.Unindexable("document or array operand")
        return False
    return keycodec.encode(value) == keycodec.encode(operand)  # NaN == NaN, as in MongoDB


def _compare(op, operand, value) -> bool:
    if operand is None:
        return _equal(value, None) if op in ("$gte", "$lte") else False
    if value is ABSENT_FIELD or value is None:
        return False
    if isinstance(operand, (list, dict)):
        raise keycodec.Unindexable("document or array operand")
    mine, theirs = keycodec.encode(value), keycodec.encode(operand)
    if mine[0] != theirs[0]:
        return False  # MongoDB compares within one type bracket only
    if _is_nan(value) or _is_nan(operand):
        return op in ("$gte", "$lte") and _is_nan(value) and _is_nan(operand)
    return {"$gt": mine > theirs, "$gte": mine >= theirs, "$lt": mine < theirs, "$lte": mine <= theirs}[op]


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
