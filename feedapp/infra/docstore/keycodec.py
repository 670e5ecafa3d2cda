"""Order-preserving index keys: bytes that sort (memcmp) as MongoDB sorts the values.

A key is a type byte, in MongoDB's order of types (null < numbers < strings < ObjectId <
booleans < dates), followed by an encoding that sorts like the value within its type. Range
operators compare within one type only (as MongoDB's do), so a range is bounded by its type's
`bracket`. A missing field and null share one key, as MongoDB's sort and `{field: None}` treat
them alike.
"""
import calendar
import math
import struct
from datetime import datetime, timezone

from bson import ObjectId

NULL = b"\x05"
_NUMBER, _STRING, _OBJECT_ID, _BOOLEAN, _DATE = 0x10, 0x20, 0x70, 0x80, 0x90
_SORT_ONLY = {dict: 0x30, list: 0x40, tuple: 0x40, bytes: 0x50}  # sortable, never indexed
EXACT_INTEGERS = 2**53  # a double holds every integer up to here


class Unindexable(ValueError):
    """The value cannot be an index key (arrays, documents, huge integers, other BSON types)."""


def encode(value) -> bytes:
    """The index key of `value`; raise Unindexable for values an index cannot hold here."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return bytes((_BOOLEAN, value))
    if isinstance(value, int):
        if abs(value) > EXACT_INTEGERS:
            raise Unindexable(f"integer {value} is beyond ±2**53")
        return bytes((_NUMBER,)) + _double(float(value))
    if isinstance(value, float):
        return bytes((_NUMBER,)) + _double(value)
    if isinstance(value, str):
        return bytes((_STRING,)) + value.encode("utf-8", "surrogatepass")
    if isinstance(value, ObjectId):
        return bytes((_OBJECT_ID,)) + value.binary
    if isinstance(value, datetime):
        return bytes((_DATE,)) + struct.pack(">Q", _millis(value) + 2**63)
    raise Unindexable(f"{type(value).__name__} values cannot be indexed by the embedded store")


def bracket(key: bytes) -> tuple:
    """(lowest, highest) keys of the type of `key`: the bounds of a range over that type."""
    return bytes((key[0],)), bytes((key[0] + 1,))


def sort_key(value) -> bytes:
    """A key that sorts any value as MongoDB compares two values: in its order of types, and
    within a type by value (numbers beyond ±2**53 exactly, embedded documents and arrays
    element by element). Keys of different values may differ from `encode`'s; compare sort
    keys only with sort keys."""
    if isinstance(value, int) and not isinstance(value, bool):
        # the double nearest the value, then the exact remainder: exact for any int64
        rounded = float(value)
        return bytes((_NUMBER,)) + _double(rounded) + struct.pack(">Q", value - int(rounded) + 2**63)
    if isinstance(value, float):
        return bytes((_NUMBER,)) + _double(value) + struct.pack(">Q", 2**63)
    try:
        return encode(value)
    except Unindexable:
        pass
    if isinstance(value, dict):  # element by element: type, then field name, then value
        return bytes((_SORT_ONLY[dict],)) + b"".join(
            b"\x01" + sort_key(item)[:1] + _escaped(str(name).encode("utf-8", "surrogatepass"))
            + _escaped(sort_key(item)) for name, item in value.items()) + b"\x00"
    if isinstance(value, (list, tuple)):  # as a document whose names are its positions
        return bytes((_SORT_ONLY[list],)) + b"".join(
            b"\x01" + sort_key(item)[:1] + _escaped(sort_key(item)) for item in value) + b"\x00"
    if isinstance(value, bytes):  # BinData: by length, then subtype, then bytes
        return bytes((_SORT_ONLY[bytes],)) + struct.pack(">IB", len(value), getattr(value, "subtype", 0)) + value
    kind = 0xF0
    return bytes((kind,)) + repr(value).encode("utf-8", "backslashreplace")


def _escaped(key: bytes) -> bytes:
    # self-delimiting and order-preserving: 0x00 -> 0x00 0xFF, terminated by 0x00 0x00
    return key.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _double(number: float) -> bytes:
    if math.isnan(number):
        return bytes(8)  # MongoDB sorts NaN below every other number
    (bits,) = struct.unpack(">Q", struct.pack(">d", number + 0.0))  # + 0.0 folds -0.0 into 0.0
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | 1 << 63
    return struct.pack(">Q", bits)


def _millis(moment: datetime) -> int:
    # What BSON stores: milliseconds since the epoch, naive datetimes taken as UTC.
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000
