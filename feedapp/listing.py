"""How a post or follow listing is paged, in the words every layer shares: a position in a
newest-first post listing (`PostCursor`), the post-list entry that stands for a post there, and
the opaque cursors a client gets as `next_cursor` and sends back as `?before=`.

An entry is `<created_at ms, 15 digits><post id, 24 hex>`: fixed width, so entries sort as
strings exactly as posts sort in the store (created_at, then id, both descending), a cursor
maps to an entry, and the Lua write-through in `cache.remote.INSERT_ENTRY` can insert a new
post at its place without parsing anything.
"""
import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId
from bson.errors import InvalidId
from marshmallow import ValidationError

ENTRY_WIDTH = 39
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class PostCursor:
    """Position in a newest-first post listing: strictly older than (created_at, id)."""

    created_at: datetime
    id: ObjectId


class InvalidCursor(ValidationError):
    """A bad `?before=` is the client's mistake: a 400 validation_error on that field."""

    def __init__(self, message: str = "Invalid cursor"):
        super().__init__({"before": [message]})


# --- post-list entries ---------------------------------------------------------------------------

def entry_of(created_at: datetime, post_id) -> str:
    """The entry of the post (created_at, post_id)."""
    millis = (created_at - _EPOCH) // timedelta(milliseconds=1)
    return f"{millis:015d}{post_id}"


def entry_of_cursor(cursor: PostCursor) -> str:
    return entry_of(cursor.created_at, cursor.id)


def millis_of(entry: str) -> str:
    return entry[:15]


def post_id_of(entry: str) -> str:
    return entry[15:]


def cursor_of(entry: str) -> PostCursor:
    """The position just after the entry's post."""
    return PostCursor(_EPOCH + timedelta(milliseconds=int(entry[:15])), ObjectId(entry[15:]))


# --- client cursors ------------------------------------------------------------------------------

def encode_post_cursor(doc) -> str:
    """Cursor just after a post document (by created_at, then id)."""
    return encode_entry_cursor(entry_of(doc["created_at"], doc["_id"]))


def encode_entry_cursor(entry: str) -> str:
    """Cursor just after a post-list entry."""
    return _encode(f"p{int(millis_of(entry))}.{post_id_of(entry)}")


def decode_post_cursor(cursor: str) -> PostCursor:
    """The position a post cursor stands for; InvalidCursor when it is none."""
    text = _decode(cursor)
    head, _, oid = text.partition(".")
    if not head.startswith("p") or not head[1:].isdigit() or len(head) > 16:
        raise InvalidCursor()
    try:
        return cursor_of(f"{int(head[1:]):015d}{_object_id(oid)}")
    except OverflowError:  # past year 9999
        raise InvalidCursor() from None


def encode_follow_cursor(follow_id: ObjectId) -> str:
    return _encode(f"f{follow_id}")


def decode_follow_cursor(cursor: str) -> ObjectId:
    """The follow record id a follow cursor stands for; InvalidCursor when it is none."""
    text = _decode(cursor)
    if not text.startswith("f"):
        raise InvalidCursor()
    return _object_id(text[1:])


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    if not cursor or len(cursor) > 200:
        raise InvalidCursor()
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None


def _object_id(text: str) -> ObjectId:
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        raise InvalidCursor() from None
