"""Users: accounts, profiles and roles."""
from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from . import shared
from .shared import DuplicateError


def new_user(username, email, password_hash, display_name, created_at) -> dict:
    """A new account's document: no bio, avatar or counts yet, role "user"."""
    return {
        "username": username,
        "username_lower": username.lower(),
        "email": email.lower(),
        "password_hash": password_hash,
        "display_name": display_name,
        "bio": "",
        "avatar_url": None,
        "role": "user",
        "followers_count": 0,
        "following_count": 0,
        "posts_count": 0,
        "created_at": created_at,
    }


class UserQueries:
    """User queries of Repository (see feedapp.repository)."""

    def create_user(self, username, email, password_hash, display_name):
        """Insert a user; raise DuplicateError("username" | "email") when one is taken."""
        doc = new_user(username, email, password_hash, display_name, shared.utcnow())
        try:
            self.db.users.insert_one(doc)
        except DuplicateKeyError as err:
            raise DuplicateError(self._duplicate_field(err, doc)) from None
        return doc

    def _duplicate_field(self, err: DuplicateKeyError, doc: dict) -> str:
        # MongoDB and the embedded store name the violated key; mongomock says only "E11000":
        # ask the store which one is taken.
        pattern = (err.details or {}).get("keyPattern")
        if pattern:
            return "email" if "email" in pattern else "username"
        query = {"username_lower": doc["username_lower"], "_id": {"$ne": doc.get("_id")}}
        return "username" if self.db.users.find_one(query, {"_id": 1}) else "email"

    def get_user(self, user_id: ObjectId):
        return self.db.users.find_one({"_id": user_id})

    def get_user_by_username(self, username: str):
        return self.db.users.find_one({"username_lower": username.lower()})

    def get_user_by_login(self, login: str):
        """Find a user by username or by email (both case-insensitive)."""
        field = "email" if "@" in login else "username_lower"
        return self.db.users.find_one({field: login.lower()})

    def most_followed(self, limit: int) -> list:
        """Ids of the `limit` users with the most followers."""
        cursor = self.db.users.find({}, {"_id": 1}).sort([("followers_count", DESCENDING)]).limit(limit)
        return [doc["_id"] for doc in cursor]

    def get_users(self, user_ids) -> dict:
        """Users by id, as {id: doc}; unknown ids are left out."""
        return {doc["_id"]: doc for doc in self.db.users.find({"_id": {"$in": list(user_ids)}})}

    def update_profile(self, user_id: ObjectId, changes: dict):
        """Set profile fields; return the updated document (None if the user is gone)."""
        if not changes:
            return self.get_user(user_id)
        return self.db.users.find_one_and_update(
            {"_id": user_id}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )

    def set_role(self, username: str, role: str):
        return self.db.users.find_one_and_update(
            {"username_lower": username.lower()},
            {"$set": {"role": role}},
            return_document=ReturnDocument.AFTER,
        )
