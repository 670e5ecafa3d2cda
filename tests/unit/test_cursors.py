"""Opaque pagination cursors (feedapp.listing)."""
import base64
from datetime import datetime

import pytest
from bson import ObjectId
from marshmallow import ValidationError

from feedapp.listing import (
    PostCursor,
    decode_follow_cursor,
    decode_post_cursor,
    encode_follow_cursor,
    encode_post_cursor,
)

OID = "0123456789abcdef01234567"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 11, 23, 10, 15, 30, 123000),
        datetime(1970, 1, 1),
        datetime(2001, 9, 9, 1, 46, 40),
        datetime(9999, 12, 31, 23, 59, 59, 999000),
    ],
)
def test_post_cursor_round_trip(created_at):
    doc = {"_id": ObjectId(), "created_at": created_at}
    cursor = encode_post_cursor(doc)

    assert decode_post_cursor(cursor) == PostCursor(created_at=created_at, id=doc["_id"])
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert len(cursor) <= 200


def test_post_cursor_keeps_milliseconds_only():
    doc = {"_id": ObjectId(), "created_at": datetime(2026, 1, 1, 0, 0, 0, 123999)}
    assert decode_post_cursor(encode_post_cursor(doc)).created_at == datetime(2026, 1, 1, 0, 0, 0, 123000)


def test_post_cursors_differ_by_time_and_by_id():
    when = datetime(2026, 1, 1)
    a, b = ObjectId(), ObjectId()
    cursors = {
        encode_post_cursor({"_id": a, "created_at": when}),
        encode_post_cursor({"_id": b, "created_at": when}),
        encode_post_cursor({"_id": a, "created_at": datetime(2026, 1, 1, 0, 0, 0, 1000)}),
    }
    assert len(cursors) == 3


def test_follow_cursor_round_trip():
    follow_id = ObjectId()
    cursor = encode_follow_cursor(follow_id)
    assert decode_follow_cursor(cursor) == follow_id
    assert "=" not in cursor


def test_decoding_accepts_the_padding_it_left_out():
    doc = {"_id": ObjectId(OID), "created_at": datetime(2026, 1, 1)}
    cursor = encode_post_cursor(doc)
    padded = cursor + "=" * (-len(cursor) % 4)
    assert decode_post_cursor(padded) == decode_post_cursor(cursor)


GARBAGE = [
    "",
    "!",
    "%%%",
    "\u00e9t\u00e9",
    "a" * 201,
    b64("hello"),
    b64("p"),
    b64("p."),
    b64("p123"),
    b64("p123."),
    b64(f"p.{OID}"),
    b64(f"p-5.{OID}"),
    b64(f"p+5.{OID}"),
    b64(f"p1e5.{OID}"),
    b64(f"p 5.{OID}"),
    b64(f"p12.{OID[:-1]}"),
    b64(f"p12.{OID}0"),
    b64(f"p12.{'g' * 24}"),
    b64(f"P12.{OID}"),
    b64(f"x12.{OID}"),
    b64(f"p{'1' * 16}.{OID}"),  # more digits than any real time has
    b64(f"p999999999999999.{OID}"),  # past year 9999
    b64(f"p253402300800000.{OID}"),  # 10000-01-01
    b64(f"p\u0661\u0662.{OID}"),  # non-ASCII digits
    b64(f"f{OID}"),  # a follow cursor is no post cursor
    base64.urlsafe_b64encode(b"\xff\xfe\x00p1." + OID.encode()).decode(),
]


@pytest.mark.parametrize("cursor", GARBAGE)
def test_garbage_post_cursors_are_a_validation_error_on_before(cursor):
    with pytest.raises(ValidationError) as caught:
        decode_post_cursor(cursor)
    assert caught.value.messages == {"before": ["Invalid cursor"]}


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!",
        "a" * 201,
        b64("f"),
        b64(f"f{OID[:-1]}"),
        b64(f"f{'z' * 24}"),
        b64(f"F{OID}"),
        b64(OID),
        b64(f"p12.{OID}"),  # a post cursor is no follow cursor
        b64(f"f{OID} "),
    ],
)
def test_garbage_follow_cursors_are_a_validation_error_on_before(cursor):
    with pytest.raises(ValidationError) as caught:
        decode_follow_cursor(cursor)
    assert caught.value.messages == {"before": ["Invalid cursor"]}
