"""Likes, and the likes_count of a post they are counted into."""
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from . import shared
from .shared import Unfinished


class LikeQueries:
    """Like queries of Repository (see feedapp.repository)."""

    def like(self, user_id: ObjectId, post_id: ObjectId):
        """Like a post: (likes_count afterwards, True if the like is new), or None if the post
        is gone."""
        if self.get_post(post_id) is None:
            return None
        try:
            self.db.likes.insert_one({"user_id": user_id, "post_id": post_id, "created_at": shared.utcnow()})
        except DuplicateKeyError:
            return self.likes_count(post_id), False
        return self._counted_like(post_id, 1)

    def unlike(self, user_id: ObjectId, post_id: ObjectId):
        """Remove a like: (likes_count afterwards, True if there was one), or None if the post
        is gone."""
        if self.db.likes.delete_one({"user_id": user_id, "post_id": post_id}).deleted_count != 1:
            count = self.likes_count(post_id)
            return None if count is None else (count, False)
        return self._counted_like(post_id, -1)

    def _counted_like(self, post_id, step):
        try:
            count = self.likes_count(post_id, inc=step)
        except PyMongoError as err:
            raise Unfinished((None, True), [("post", post_id)], err) from err  # count unknown
        return None if count is None else (count, True)

    def likes_count(self, post_id: ObjectId, inc: int = 0):
        """A post's likes_count, after adding inc to it; None when the post is gone."""
        if inc:
            doc = self.db.posts.find_one_and_update(
                {"_id": post_id},
                {"$inc": {"likes_count": inc}},
                projection={"likes_count": 1},
                return_document=ReturnDocument.AFTER,
            )
        else:
            doc = self.db.posts.find_one({"_id": post_id}, {"likes_count": 1})
        return None if doc is None else doc["likes_count"]

    def settle_like(self, user_id: ObjectId, post_id: ObjectId):
        """Mark a like whose every effect (its count, the evictions) is done: a repeat of it
        has nothing to redo."""
        self.db.likes.update_one({"user_id": user_id, "post_id": post_id}, {"$set": {"settled": True}})

    def like_settled(self, user_id: ObjectId, post_id: ObjectId) -> bool:
        """Whether that like exists and is settled (`settle_like`)."""
        found = self.db.likes.find_one({"user_id": user_id, "post_id": post_id}, {"settled": 1})
        return found is not None and found.get("settled") is True

    def has_liked(self, user_id: ObjectId, post_id: ObjectId) -> bool:
        return self.db.likes.find_one({"user_id": user_id, "post_id": post_id}) is not None

    def delete_likes_of(self, post_id: ObjectId):
        """Remove the likes of a deleted post."""
        self.db.likes.delete_many({"post_id": post_id})
