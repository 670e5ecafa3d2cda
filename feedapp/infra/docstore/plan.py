"""Turn a MongoDB filter and sort into SQL over the index columns, as far as they go.

`where(filter, columns)` returns a `Condition`: SQL over the columns of indexed fields, and
whether that SQL is *exact* (selects precisely the documents the filter matches). Parts of the
filter it cannot express (fields without a column, `$regex`, `$elemMatch`, ...) are left out of
the SQL, which then selects a superset, and `exact` is False: the caller checks every selected
document against the whole filter. So the SQL only ever narrows the rows; it never decides a
match it cannot decide exactly.
"""
import math
import re
from dataclasses import dataclass, field

from bson.regex import Regex
from pymongo.errors import OperationFailure

from . import keycodec
from .keycodec import NULL, Unindexable

_NAN = keycodec.encode(math.nan)  # the lowest number key


@dataclass
class Condition:
    sql: str | None = None  # None: no restriction
    params: list = field(default_factory=list)
    exact: bool = True


_EVERYTHING = Condition()


def where(query: dict, columns: dict) -> Condition:
    """The SQL condition for `query` over `columns` ({field path: quoted column})."""
    parts = []
    exact = True
    for name, value in query.items():
        if name in ("$and", "$or", "$nor") and (not isinstance(value, (list, tuple)) or not value):
            raise OperationFailure("$and/$or/$nor must be a nonempty array", 2)  # BadValue, as MongoDB
        if name == "$and":
            part = _all([where(q, columns) for q in value])
        elif name == "$or":
            part = _any([where(q, columns) for q in value])
        elif name.startswith("$") or name not in columns:
            part = Condition(exact=False)
        else:
            part = _field(columns[name], value)
        parts.append(part)
        exact = exact and part.exact
    combined = _all(parts)
    return Condition(combined.sql, combined.params, exact)


def order_by(sort: list, columns: dict) -> str | None:
    """ORDER BY terms for `sort` ([(path, ±1)]), or None when a field has no column."""
    if any(path not in columns for path, _ in sort):
        return None
    return ", ".join(f"{columns[path]} {'DESC' if direction < 0 else 'ASC'}" for path, direction in sort)


def _all(parts: list) -> Condition:
    sql = [p for p in parts if p.sql is not None]
    return Condition(
        " AND ".join(f"({p.sql})" for p in sql) if sql else None,
        [param for p in sql for param in p.params],
        all(p.exact for p in parts),
    )


def _any(parts: list) -> Condition:
    if any(p.sql is None for p in parts):  # one branch is unrestricted in SQL
        # exact only when a branch is known to match everything; then so does the $or
        return Condition(exact=any(p.sql is None and p.exact for p in parts))
    return Condition(
        " OR ".join(f"({p.sql})" for p in parts) if parts else "0",
        [param for p in parts for param in p.params],
        all(p.exact for p in parts),
    )


def _field(column: str, value) -> Condition:
    if isinstance(value, dict) and value and all(str(k).startswith("$") for k in value):
        return _all([_operator(column, op, operand) for op, operand in value.items()])
    return _equal(column, value)


def _equal(column: str, value, negate=False) -> Condition:
    key = _key(value)
    if key is None:
        return Condition(exact=False)
    return Condition(f"{column} {'!=' if negate else '='} ?", [key])


def _operator(column: str, op: str, operand) -> Condition:
    if op == "$eq":
        return _equal(column, operand)
    if op == "$ne":
        return _equal(column, operand, negate=True)
    if op in ("$in", "$nin") and isinstance(operand, (list, tuple)):
        keys = [_key(v) for v in operand]
        if any(k is None for k in keys):
            return Condition(exact=False)
        if not keys:
            return Condition("0" if op == "$in" else "1")
        marks = ", ".join("?" * len(keys))
        return Condition(f"{column} {'IN' if op == '$in' else 'NOT IN'} ({marks})", keys)
    if op in _RANGES and operand is None:  # MongoDB: null equality (missing too), or nothing
        return Condition(f"{column} = ?", [NULL]) if op in ("$gte", "$lte") else Condition("0")
    if op in _RANGES:
        key = _key(operand)
        if key is None:
            return Condition(exact=False)
        if key == _NAN:  # MongoDB: NaN equals NaN, and every other comparison with it is false
            return Condition(f"{column} = ?", [key]) if op in ("$gte", "$lte") else Condition("0")
        low, high = keycodec.bracket(key)
        if low == _NAN[:1]:  # a range of numbers never holds NaN, though NaN sorts below them
            return Condition(f"{column} {_RANGES[op]} ? AND {column} > ? AND {column} < ?", [key, _NAN, high])
        return Condition(f"{column} {_RANGES[op]} ? AND {column} >= ? AND {column} < ?", [key, low, high])
    return Condition(exact=False)


_RANGES = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _key(value):
    """The index key of a filter operand, or None when SQL cannot compare it exactly."""
    if isinstance(value, (re.Pattern, Regex)):
        return None
    try:
        return keycodec.encode(value)
    except Unindexable:
        return None


__all__ = ["Condition", "where", "order_by", "NULL"]
