"""Work on one document in Python: dotted paths, projections, update operators, upserts."""
import numbers
import re

from bson.regex import Regex
from pymongo.errors import OperationFailure, WriteError

from .keycodec import sort_key

ABSENT_FIELD = object()  # what a path holds in a document that lacks it (None is a value)


def get_path(doc: dict, path: str):
    """The value at a dotted path, ABSENT_FIELD when absent; arrays along the path are not
    walked (the store never indexes them, see keycodec)."""
    value = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return ABSENT_FIELD
        value = value[part]
    return value


def project(doc: dict, projection):
    """`doc` as pymongo returns it under `projection` (see `projector`)."""
    return projector(projection)(doc)


def projector(projection):
    """A function giving a document as pymongo returns it under `projection` (a dict of 0/1,
    or a list of fields), checked and compiled once for every document of a query.

    As MongoDB: dotted paths reach into embedded documents and into the documents of arrays;
    inclusion and exclusion do not mix (but for `_id`); operators are refused here."""
    if projection is None:
        return _whole
    if not isinstance(projection, dict):
        projection = dict.fromkeys(projection, 1)
    if not projection:
        return _whole
    for path, how in projection.items():
        if isinstance(how, dict) or not isinstance(how, (bool, int, float)) or any(
                part.startswith("$") or not part for part in str(path).split(".")):
            raise OperationFailure(f"projection {path!r}: {how!r} is not supported by the embedded store")
    include_id = bool(projection.get("_id", 1))
    fields = {path: bool(how) for path, how in projection.items() if path != "_id"}
    inclusion = any(fields.values()) or (not fields and include_id)
    if any(how != inclusion for how in fields.values()):
        raise OperationFailure(f"Cannot do {'exclusion' if inclusion else 'inclusion'} in "
                               f"{'inclusion' if inclusion else 'exclusion'} projection: {projection}", 31254)
    tree = _path_tree([*fields, *(["_id"] if include_id == inclusion else [])])
    if inclusion:
        return lambda doc: _include(doc, tree)
    return lambda doc: _exclude(doc, tree)


def _whole(doc: dict) -> dict:
    return doc


_LEAF = object()


def _path_tree(paths) -> dict:
    tree = {}
    for path in paths:
        node, *parents_and_last = tree, *path.split(".")
        *parents, last = parents_and_last
        for part in parents:
            node = node.setdefault(part, {})
            if node is _LEAF:
                raise OperationFailure(f"Path collision at {path}", 31249)
        if last in node:
            raise OperationFailure(f"Path collision at {path}", 31249)
        node[last] = _LEAF
    return tree


def _include(doc: dict, tree: dict) -> dict:
    out = {}
    for key, value in doc.items():  # MongoDB keeps the document's order of fields
        sub = tree.get(key)
        if sub is _LEAF:
            out[key] = value
        elif sub is not None and isinstance(value, dict):
            out[key] = _include(value, sub)
        elif sub is not None and isinstance(value, list):
            out[key] = _include_array(value, sub)
    return out


def _include_array(array: list, tree: dict) -> list:
    # elements that are neither documents nor arrays have no such fields: dropped
    return [_include(item, tree) if isinstance(item, dict) else _include_array(item, tree)
            for item in array if isinstance(item, (dict, list))]


def _exclude(doc: dict, tree: dict) -> dict:
    out = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is _LEAF:
            continue
        if sub is not None and isinstance(value, dict):
            value = _exclude(value, sub)
        elif sub is not None and isinstance(value, list):
            value = _exclude_array(value, sub)
        out[key] = value
    return out


def _exclude_array(array: list, tree: dict) -> list:
    return [_exclude(item, tree) if isinstance(item, dict) else
            _exclude_array(item, tree) if isinstance(item, list) else item for item in array]


def sort_documents(docs: list, sort: list, document=lambda d: d) -> list:
    """Sort in place as MongoDB sorts by [(path, ±1)]: stable, one pass per key, last first.

    As MongoDB: a path reaching several values (through arrays) sorts ascending by the least
    of them and descending by the greatest; an empty array sorts below null and missing."""
    for path, direction in reversed(sort):
        parts = path.split(".")
        pick = min if direction > 0 else max
        docs.sort(key=lambda d, parts=parts, pick=pick: pick(_sort_keys(document(d), parts)), reverse=direction < 0)
    return docs


_EMPTY_ARRAY = b"\x01"  # below null's key (keycodec.NULL), above nothing that sorts


def _sort_keys(value, parts) -> list:
    """The sort keys of the values at `parts` below `value` (arrays walked), never empty."""
    if not parts:
        if isinstance(value, list):
            return [sort_key(item) for item in value] or [_EMPTY_ARRAY]
        return [sort_key(value)]
    if isinstance(value, dict):
        return _sort_keys(value[parts[0]], parts[1:]) if parts[0] in value else [sort_key(None)]
    if isinstance(value, list):
        keys = []
        if parts[0].isdigit() and int(parts[0]) < len(value):
            keys += _sort_keys(value[int(parts[0])], parts[1:])
        for item in value:
            if isinstance(item, dict):
                keys += _sort_keys(item, parts)
        return keys or [sort_key(None)]
    return [sort_key(None)]


def apply_update(doc: dict, update: dict, inserting: bool = False) -> dict:
    """Apply update operators to `doc` in place and return it; `inserting` runs $setOnInsert."""
    if not isinstance(update, dict) or not update or not all(str(op).startswith("$") for op in update):
        raise ValueError("update only works with $ operators")
    for op, changes in update.items():
        if op not in _OPERATORS:
            raise OperationFailure(f"update operator {op} is not supported by the embedded store")
    paths = sorted(str(path) for changes in update.values() for path in changes)
    for first, second in zip(paths, paths[1:]):  # sorted: a conflicting pair is adjacent
        if second == first or second.startswith(first + "."):
            raise WriteError(f"Updating the path '{second}' would create a conflict at '{first}'", 40)
    for op, changes in update.items():
        apply = _OPERATORS[op]
        for path, value in changes.items():
            if path == "_id" or path.startswith("_id."):
                if op != "$setOnInsert" and not (op == "$set" and doc.get("_id") == value):
                    raise WriteError("Performing an update on the path '_id' would modify the immutable field '_id'", 66)
            apply(doc, path, value, inserting)
    return doc


def upsert_seed(query: dict) -> dict:
    """The document an upsert starts from: the filter's top-level equality conditions."""
    seed = {}
    for name, value in query.items():
        if name == "$and":
            for part in value:
                seed.update(upsert_seed(part))
        elif not name.startswith("$"):
            if isinstance(value, dict) and value and all(str(k).startswith("$") for k in value):
                if "$eq" in value:
                    _set(seed, name, value["$eq"])
            elif not isinstance(value, (re.Pattern, Regex)):  # a regex is no equality
                _set(seed, name, value)
    return seed


def _or_none(value):
    return None if value is ABSENT_FIELD else value


def _set(doc: dict, path: str, value):
    *parents, last = path.split(".")
    for part in parents:
        child = doc.setdefault(part, {})
        if not isinstance(child, dict):
            raise WriteError(f"Cannot create field {last!r} in element {{{part}: {child!r}}}", 28)
        doc = child
    doc[last] = value


def _unset(doc: dict, path: str):
    *parents, last = path.split(".")
    for part in parents:
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return
    if isinstance(doc, dict):
        doc.pop(last, None)
    elif isinstance(doc, list) and last.isdigit() and int(last) < len(doc):
        doc[int(last)] = None  # as MongoDB: an array keeps its length


def _op_set(doc, path, value, inserting):
    _set(doc, path, value)


def _op_set_on_insert(doc, path, value, inserting):
    if inserting:
        _set(doc, path, value)


def _op_unset(doc, path, value, inserting):
    _unset(doc, path)


def _number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _op_inc(doc, path, value, inserting):
    if not _number(value):
        raise WriteError(f"Cannot increment with non-numeric argument: {{{path}: {value!r}}}", 14)
    current = get_path(doc, path)
    if current is ABSENT_FIELD:
        current = 0
    elif not _number(current):
        raise WriteError(f"Cannot apply $inc to a value of non-numeric type at {path!r}", 14)
    _set(doc, path, current + value)


def _extreme(keep_new):
    def apply(doc, path, value, inserting):
        current = get_path(doc, path)
        if current is ABSENT_FIELD or keep_new(sort_key(value), sort_key(current)):
            _set(doc, path, value)

    return apply


_OPERATORS = {
    "$set": _op_set,
    "$setOnInsert": _op_set_on_insert,
    "$unset": _op_unset,
    "$inc": _op_inc,
    "$min": _extreme(lambda new, old: new < old),
    "$max": _extreme(lambda new, old: new > old),
}
