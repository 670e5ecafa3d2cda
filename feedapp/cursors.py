"""Opaque pagination cursors: what the client gets as `next_cursor` and sends as `?before=`."""
import base64
import binascii

from bson import ObjectId
from bson.errors import InvalidId
from marshmallow import ValidationError

from .cache import postlists
from .repository import PostCursor


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
    return encode_entry_cursor(postlists.entry_of(doc["created_at"], doc["_id"]))


def encode_entry_cursor(entry: str) -> str:
    """Cursor just after a post-list entry (see feedapp.cache.postlists)."""
    return _encode(f"p{int(postlists.millis_of(entry))}.{postlists.post_id_of(entry)}")


def decode_post_cursor(cursor: str) -> PostCursor:
    text = _decode(cursor)
    head, _, oid = text.partition(".")
    if not head.startswith("p") or not head[1:].isdigit() or len(head) > 16:
        raise InvalidCursor("Invalid cursor")
    try:
        return postlists.cursor_of(f"{int(head[1:]):015d}{_object_id(oid)}")
    except OverflowError:  # past year 9999
        raise InvalidCursor("Invalid cursor") from None


def encode_follow_cursor(follow_id: ObjectId) -> str:
    return _encode(f"f{follow_id}")


def decode_follow_cursor(cursor: str) -> ObjectId:
    text = _decode(cursor)
    if not text.startswith("f"):
        raise InvalidCursor("Invalid cursor")
    return _object_id(text[1:])
