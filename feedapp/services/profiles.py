"""Profiles: registration, public and private representations, updates."""
from bson import ObjectId

from ..errors import conflict, not_found
from ..repository import DuplicateError
from ..schemas import USERNAME, private_profile_schema, profile_schema

AUTHOR_FIELDS = ("username", "display_name")  # what a Post shows of its author (schemas.post_representation)


class ProfileService:
    def __init__(self, repo, cache, writer, keys, effects):
        self.repo = repo
        self.cache = cache
        self.writer = writer
        self.keys = keys
        self.effects = effects

    def register(self, username, email, password_hash, display_name) -> dict:
        """Create a user (409 when the username or email is taken); its PrivateProfile."""
        try:
            doc = self.repo.create_user(username, email, password_hash, display_name)
        except DuplicateError as err:
            raise conflict(f"That {err.field} is already taken", {err.field: ["already taken"]}) from None
        # Both lookups may have been cached as absent: the name, and the id (ObjectIds are
        # predictable, so anyone may have asked for this one before it existed).
        self.writer.invalidate(keys=[self.keys.username(username), self.keys.profile(doc["_id"]),
                                     self.keys.author(doc["_id"])])
        return private_profile_schema.dump(doc)

    def get(self, user_id):
        """The public Profile of user_id; 404 APIError when there is none."""
        profile = self.cache.get_or_load(self.keys.profile(user_id), lambda: self._load(user_id))
        if profile is None:
            raise not_found("User")
        return profile

    def get_by_username(self, username: str):
        """The public Profile of a username (any case); 404 when unknown."""
        if USERNAME.regex.match(username) is None:
            raise not_found("User")
        user_id = self.cache.get_or_load(self.keys.username(username), lambda: self._load_id(username))
        if user_id is None:
            raise not_found("User")
        return self.get(ObjectId(user_id))

    def author(self, user_id) -> dict:
        """What posts show of user_id; 404 APIError when there is no such user. A page of
        user_id's listing checks that it exists with it: a counter change then leaves the
        page alone."""
        found = self.authors([user_id])
        if not found:
            raise not_found("User")
        return found[user_id]

    def authors(self, user_ids) -> dict:
        """What posts show of their authors ({id: {"username", "display_name"}}); unknown ids
        are left out. Cached apart from profiles: a counter change leaves it alone."""
        keys = {self.keys.author(uid): uid for uid in dict.fromkeys(user_ids)}
        found = self.cache.get_many_or_load(keys, self._load_authors)
        return {uid: found[key] for key, uid in keys.items() if found[key] is not None}

    def private(self, user_id):
        """The caller's PrivateProfile, always from the store."""
        doc = self.repo.get_user(user_id)
        if doc is None:
            raise not_found("User")
        return private_profile_schema.dump(doc)

    def is_admin(self, user_id) -> bool:
        """Whether user_id is an admin, always from the store (a role is never cached)."""
        doc = self.repo.get_user(user_id)
        return bool(doc) and doc.get("role") == "admin"

    def update(self, user_id, changes: dict):
        """Apply profile changes; once this returns, no worker serves the old profile."""
        keys = [self.keys.profile(user_id)]
        if any(field in changes for field in AUTHOR_FIELDS):
            keys.append(self.keys.author(user_id))
        doc = self.effects.commit(lambda: self.repo.update_profile(user_id, changes), [], keys)
        if doc is None:
            raise not_found("User")
        if changes:
            self.writer.invalidate(keys=keys)
        return private_profile_schema.dump(doc)

    def _load(self, user_id):
        doc = self.repo.get_user(user_id)
        return None if doc is None else profile_schema.dump(doc)

    def _load_id(self, username):
        doc = self.repo.get_user_by_username(username)
        return None if doc is None else str(doc["_id"])

    def _load_authors(self, user_ids):
        return {uid: _author(profile_schema.dump(doc)) for uid, doc in self.repo.get_users(user_ids).items()}


def _author(profile: dict) -> dict:
    return {field: profile.get(field) for field in AUTHOR_FIELDS}
