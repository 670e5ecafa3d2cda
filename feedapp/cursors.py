"""Opaque pagination cursors: what the client gets as `next_cursor` and sends as `?before=`."""
import base64
import binascii
from datetime import datetime, timedelta

from bson import ObjectId
from bson.errors import InvalidId
from marshmallow import ValidationError

from .repository import PostCursor

_EPOCH = datetime(1970, 1, 1)


def InvalidCursor(message):
    """A bad `?before=` is the client's mistake: a 400 validation_error on that field."""
    return ValidationError({"before": [message]})


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    if not cursor or len(cursor) > 200:
        raise InvalidCursor("Invalid cursor")
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidCursor("Invalid cursor") from None


def _object_id(text: str) -> ObjectId:
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        raise InvalidCursor("Invalid cursor") from None


def encode_post_cursor(doc) -> str:
    """Cursor just after a post document (by created_at, then id)."""
    millis = (doc["created_at"] - _EPOCH) // timedelta(milliseconds=1)
    return _encode(f"p{millis}.{doc['_id']}")


def encode_entry_cursor(entry: str) -> str:
    """Cursor just after a cached post-list entry (see feedapp.cache.postlists)."""
    return _encode(f"p{int(entry[:15])}.{entry[15:]}")


def decode_post_cursor(cursor: str) -> PostCursor:
    text = _decode(cursor)
    head, _, oid = text.partition(".")
    if not head.startswith("p") or not head[1:].isdigit() or len(head) > 16:
        raise InvalidCursor("Invalid cursor")
    try:
        created_at = _EPOCH + timedelta(milliseconds=int(head[1:]))
    except OverflowError:  # past year 9999
        raise InvalidCursor("Invalid cursor") from None
    return PostCursor(created_at=created_at, id=_object_id(oid))


def encode_follow_cursor(follow_id: ObjectId) -> str:
    return _encode(f"f{follow_id}")


def decode_follow_cursor(cursor: str) -> ObjectId:
    text = _decode(cursor)
    if not text.startswith("f"):
        raise InvalidCursor("Invalid cursor")
    return _object_id(text[1:])
