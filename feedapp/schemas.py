"""marshmallow schemas: request validation (unknown fields rejected) and representations.

Representations are built from store documents here and only here, so no private field
(email, password hash, role) can reach a public body or a shared cache key by accident.
"""
from datetime import datetime, timezone

from bson import ObjectId
from bson.errors import InvalidId
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

USERNAME = validate.Regexp(r"^[A-Za-z0-9_]{3,30}\Z", error="3 to 30 letters, digits or underscores")
MAX_PAGE = 1_000_000


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z suffix."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class Trimmed(fields.String):
    """A string with surrounding white space removed before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class ObjectIdString(fields.String):
    """A 24-hex id string, loaded as an ObjectId."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_object_id(text)
        except ValueError:
            raise ValidationError("Not a valid id (24 hexadecimal characters).") from None


def parse_object_id(text: str) -> ObjectId:
    """Parse a 24-hex id (any case); raise ValueError for anything else."""
    if not isinstance(text, str) or len(text) != 24:
        raise ValueError(text)
    try:
        return ObjectId(text.lower())
    except (InvalidId, TypeError):
        raise ValueError(text) from None


class BodySchema(Schema):
    class Meta:
        unknown = RAISE


class QuerySchema(Schema):
    # Query strings may carry cache busters and tracking parameters: ignore what we don't use.
    class Meta:
        unknown = EXCLUDE


class RegisterSchema(BodySchema):
    username = Trimmed(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=8, max=128))
    display_name = Trimmed(validate=validate.Length(min=1, max=50))

    @pre_load
    def trim_email(self, data, **kwargs):
        if isinstance(data.get("email"), str):
            data = {**data, "email": data["email"].strip()}
        return data


class LoginSchema(BodySchema):
    username = Trimmed(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=128))


class RefreshSchema(BodySchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class ProfileUpdateSchema(BodySchema):
    display_name = Trimmed(validate=validate.Length(min=1, max=50))
    bio = Trimmed(validate=validate.Length(max=160))
    avatar_url = fields.URL(
        allow_none=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=500),
    )


class PostCreateSchema(BodySchema):
    content = Trimmed(required=True, validate=validate.Length(min=1, max=500))


class InvalidateSchema(BodySchema):
    keys = fields.List(
        fields.String(validate=validate.Length(min=1, max=300)),
        validate=validate.Length(min=1, max=1000),
    )
    prefix = fields.String(validate=validate.Length(min=1, max=300))

    @validates_schema
    def exactly_one(self, data, **kwargs):
        # After field validation, so that unknown or malformed fields are reported as such.
        if ("keys" in data) == ("prefix" in data):
            raise ValidationError("Give either keys or prefix.", "_schema")


class PageQuerySchema(QuerySchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    before = fields.String(validate=validate.Length(min=1, max=200))


class ExploreQuerySchema(QuerySchema):
    q = Trimmed(validate=[validate.Length(max=100), validate.Regexp(r"^[^\x00]*\Z", error="Must not contain NUL.")])
    author = ObjectIdString()
    sort = fields.String(load_default="recent", validate=validate.OneOf(["recent", "popular"]))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class ProfileSchema(Schema):
    id = fields.Function(lambda doc: str(doc["_id"]))
    username = fields.String()
    display_name = fields.String()
    bio = fields.String()
    avatar_url = fields.String(allow_none=True)
    followers_count = fields.Integer()
    following_count = fields.Integer()
    posts_count = fields.Integer()
    created_at = fields.Function(lambda doc: format_time(doc["created_at"]))


class PrivateProfileSchema(ProfileSchema):
    email = fields.String()
    role = fields.String()


class PostCoreSchema(Schema):
    """A post without its author's names (those come from the author's profile)."""

    id = fields.Function(lambda doc: str(doc["_id"]))
    author_id = fields.Function(lambda doc: str(doc["author_id"]))
    content = fields.String()
    created_at = fields.Function(lambda doc: format_time(doc["created_at"]))
    likes_count = fields.Integer()


profile_schema = ProfileSchema()
private_profile_schema = PrivateProfileSchema()
post_core_schema = PostCoreSchema()


def post_representation(core: dict, author: dict | None) -> dict:
    """The Post of API.md, from a post core and its author's public profile."""
    summary = {
        "id": core["author_id"],
        "username": author["username"] if author else None,
        "display_name": author["display_name"] if author else None,
    }
    return {
        "id": core["id"],
        "author": summary,
        "content": core["content"],
        "created_at": core["created_at"],
        "likes_count": core["likes_count"],
    }
