"""Request validation and public representations (feedapp.schemas)."""
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId
from marshmallow import ValidationError

from feedapp.schemas import (
    USERNAME,
    ExploreQuerySchema,
    InvalidateSchema,
    LoginSchema,
    PageQuerySchema,
    PostCreateSchema,
    PrivateProfileSchema,
    ProfileSchema,
    ProfileUpdateSchema,
    RefreshSchema,
    RegisterSchema,
    format_time,
    post_core_schema,
    post_representation,
)

VALID_REGISTER = {"username": "alice_1", "email": "alice@example.com", "password": "password123"}


def errors(schema, data):
    """The error messages of schema.load(data) (the test fails if it loads)."""
    with pytest.raises(ValidationError) as caught:
        schema.load(data)
    return caught.value.messages


# --- unknown fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema, body",
    [
        (RegisterSchema(), VALID_REGISTER),
        (LoginSchema(), {"username": "alice", "password": "x"}),
        (RefreshSchema(), {"refresh_token": "t"}),
        (ProfileUpdateSchema(), {"bio": "hi"}),
        (PostCreateSchema(), {"content": "hi"}),
        (InvalidateSchema(), {"prefix": "feedapp:v1:cache:"}),
    ],
)
def test_bodies_reject_unknown_fields(schema, body):
    schema.load(body)  # valid as it is
    assert errors(schema, {**body, "role": "admin"}) == {"role": ["Unknown field."]}


def test_query_schemas_ignore_unknown_parameters():
    assert PageQuerySchema().load({"limit": "5", "_": "1700000000", "utm_source": "x"}) == {"limit": 5}
    loaded = ExploreQuerySchema().load({"q": "hi", "cachebust": "1"})
    assert loaded == {"q": "hi", "sort": "recent", "page": 1, "page_size": 20}


# --- trimming and lengths --------------------------------------------------------------------


def test_register_trims_username_email_and_display_name_but_not_the_password():
    loaded = RegisterSchema().load(
        {"username": "  alice_1\t", "email": " alice@example.com\n", "password": " pass word ", "display_name": "  Alice  "}
    )
    assert loaded == {"username": "alice_1", "email": "alice@example.com", "password": " pass word ", "display_name": "Alice"}


def test_profile_update_and_post_content_are_trimmed():
    assert ProfileUpdateSchema().load({"display_name": " Al ", "bio": "\n about me \n"}) == {
        "display_name": "Al",
        "bio": "about me",
    }
    assert PostCreateSchema().load({"content": "\u00a0 hello \u2003"}) == {"content": "hello"}
    assert ExploreQuerySchema().load({"q": "  hi  "})["q"] == "hi"


@pytest.mark.parametrize("content", ["", "   ", "\n\t ", "a" * 501])
def test_post_content_is_1_to_500_characters_after_trimming(content):
    assert "content" in errors(PostCreateSchema(), {"content": content})


def test_post_content_of_500_characters_plus_white_space_is_accepted():
    assert PostCreateSchema().load({"content": "  " + "a" * 500 + "\n"}) == {"content": "a" * 500}


@pytest.mark.parametrize(
    "schema, field, good, bad",
    [
        (ProfileUpdateSchema(), "display_name", "d" * 50, "d" * 51),
        (ProfileUpdateSchema(), "display_name", " d ", "   "),
        (ProfileUpdateSchema(), "bio", " " + "b" * 160 + " ", "b" * 161),
        (ExploreQuerySchema(), "q", " " + "q" * 100 + " ", "q" * 101),
        (PageQuerySchema(), "before", "c" * 200, "c" * 201),
        (PageQuerySchema(), "limit", "100", "101"),
        (PageQuerySchema(), "limit", "1", "0"),
        (ExploreQuerySchema(), "page_size", "100", "101"),
        (ExploreQuerySchema(), "page", "1", "0"),
        (ExploreQuerySchema(), "sort", "popular", "random"),
        (LoginSchema(), "username", "alice", "   "),
    ],
)
def test_length_and_range_limits(schema, field, good, bad):
    base = {"password": "x"} if isinstance(schema, LoginSchema) else {}
    schema.load({**base, field: good})
    assert field in errors(schema, {**base, field: bad})


def test_bio_may_be_empty():
    assert ProfileUpdateSchema().load({"bio": "   "}) == {"bio": ""}


@pytest.mark.parametrize("password, ok", [("1234567", False), ("12345678", True), ("p" * 128, True), ("p" * 129, False)])
def test_password_is_8_to_128_characters(password, ok):
    body = {**VALID_REGISTER, "password": password}
    if ok:
        assert RegisterSchema().load(body)["password"] == password
    else:
        assert "password" in errors(RegisterSchema(), body)


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a" * 250 + "@x.com"])
def test_register_rejects_bad_emails(email):
    assert "email" in errors(RegisterSchema(), {**VALID_REGISTER, "email": email})


def test_register_requires_username_email_and_password():
    assert set(errors(RegisterSchema(), {})) == {"username", "email", "password"}


# --- usernames -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["abc", "A_b_9", "x" * 30, "___"])
def test_username_regex_accepts(name):
    assert USERNAME(name) == name
    assert RegisterSchema().load({**VALID_REGISTER, "username": name})["username"] == name


@pytest.mark.parametrize("name", ["ab", "x" * 31, "ab-c", "a b", "a.b", "äbc", "abc\n", "ab\nc", "\nabc", "abc\x00", "abc$"])
def test_username_regex_rejects(name):
    with pytest.raises(ValidationError):
        USERNAME(name)


@pytest.mark.parametrize("name", ["ab", "x" * 31, "ab\nc", "a b", "ab-c", "äbc"])
def test_register_rejects_bad_usernames(name):
    assert "username" in errors(RegisterSchema(), {**VALID_REGISTER, "username": name})


# --- avatar_url ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://example.com/a.png", "http://cdn.example.org/x?y=1", None])
def test_avatar_url_accepts_http_https_and_null(url):
    assert ProfileUpdateSchema().load({"avatar_url": url}) == {"avatar_url": url}


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/a.png",
        "//example.com/a.png",
        "example.com/a.png",
        "",
        "https://example.com/" + "a" * 481,  # 501 characters
    ],
)
def test_avatar_url_rejects(url):
    assert "avatar_url" in errors(ProfileUpdateSchema(), {"avatar_url": url})


def test_avatar_url_of_exactly_500_characters_is_accepted():
    url = "https://example.com/" + "a" * 480
    assert len(url) == 500
    assert ProfileUpdateSchema().load({"avatar_url": url}) == {"avatar_url": url}


# --- operator injection ----------------------------------------------------------------------


OPERATORS = [{"$ne": ""}, {"$gt": ""}, {"$regex": ".*"}, ["a"], 5, True]


@pytest.mark.parametrize("value", OPERATORS)
@pytest.mark.parametrize(
    "schema, field, base",
    [
        (LoginSchema(), "username", {"password": "x"}),
        (LoginSchema(), "password", {"username": "alice"}),
        (RegisterSchema(), "username", VALID_REGISTER),
        (RegisterSchema(), "password", VALID_REGISTER),
        (RegisterSchema(), "display_name", VALID_REGISTER),
        (RefreshSchema(), "refresh_token", {}),
        (PostCreateSchema(), "content", {}),
        (ProfileUpdateSchema(), "bio", {}),
        (ProfileUpdateSchema(), "display_name", {}),
        (ExploreQuerySchema(), "q", {}),
        (ExploreQuerySchema(), "author", {}),
        (PageQuerySchema(), "before", {}),
    ],
)
def test_non_strings_are_not_a_valid_string(schema, field, base, value):
    assert errors(schema, {**base, field: value}) == {field: ["Not a valid string."]}


@pytest.mark.parametrize("value", OPERATORS)
def test_non_strings_are_rejected_as_email_and_avatar_url(value):
    assert "email" in errors(RegisterSchema(), {**VALID_REGISTER, "email": value})
    assert "avatar_url" in errors(ProfileUpdateSchema(), {"avatar_url": value})


def test_explore_author_is_a_24_hex_id():
    oid = ObjectId()
    assert ExploreQuerySchema().load({"author": str(oid).upper()})["author"] == oid
    for bad in ("zz", "0" * 23, "g" * 24, str(oid) + "0"):
        assert "author" in errors(ExploreQuerySchema(), {"author": bad})


# --- representations -------------------------------------------------------------------------


def user_doc():
    return {
        "_id": ObjectId(),
        "username": "Alice",
        "username_lower": "alice",
        "email": "alice@example.com",
        "password_hash": "scrypt:secret",
        "display_name": "Alice",
        "bio": "",
        "avatar_url": None,
        "role": "admin",
        "followers_count": 3,
        "following_count": 2,
        "posts_count": 1,
        "created_at": datetime(2026, 11, 23, 10, 15, 30, 123000),
    }


def test_profile_dump_is_exactly_the_public_profile():
    doc = user_doc()
    dumped = ProfileSchema().dump(doc)
    assert dumped == {
        "id": str(doc["_id"]),
        "username": "Alice",
        "display_name": "Alice",
        "bio": "",
        "avatar_url": None,
        "followers_count": 3,
        "following_count": 2,
        "posts_count": 1,
        "created_at": "2026-11-23T10:15:30.123Z",
    }
    assert not {"email", "password_hash", "role", "username_lower", "_id"} & set(dumped)
    assert "secret" not in repr(dumped) and "alice@example.com" not in repr(dumped)


def test_private_profile_adds_email_and_role_but_never_the_hash():
    dumped = PrivateProfileSchema().dump(user_doc())
    assert (dumped["email"], dumped["role"]) == ("alice@example.com", "admin")
    assert "password_hash" not in dumped and "scrypt:secret" not in repr(dumped)


def test_post_representation():
    author = user_doc()
    post = {"_id": ObjectId(), "author_id": author["_id"], "content": "hi", "created_at": author["created_at"], "likes_count": 4}
    core = post_core_schema.dump(post)
    represented = post_representation(core, ProfileSchema().dump(author))
    assert represented == {
        "id": str(post["_id"]),
        "author": {"id": str(author["_id"]), "username": "Alice", "display_name": "Alice"},
        "content": "hi",
        "created_at": "2026-11-23T10:15:30.123Z",
        "likes_count": 4,
    }


@pytest.mark.parametrize(
    "value, text",
    [
        (datetime(2026, 11, 23, 10, 15, 30, 123000), "2026-11-23T10:15:30.123Z"),
        (datetime(2026, 11, 23, 10, 15, 30, 123999), "2026-11-23T10:15:30.123Z"),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 11, 23, 12, 15, 30, 7000, tzinfo=timezone(timedelta(hours=2))), "2026-11-23T10:15:30.007Z"),
        (datetime(2026, 11, 23, 10, 15, 30, 123000, tzinfo=timezone.utc), "2026-11-23T10:15:30.123Z"),
    ],
)
def test_format_time(value, text):
    assert format_time(value) == text
