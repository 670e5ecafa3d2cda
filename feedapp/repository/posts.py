"""Posts, their idempotency keys, and the post listings (timelines, home feeds, explore)."""
import re

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from ..listing import PostCursor
from . import shared
from .indexes import NEWEST_FIRST, POPULAR_FIRST


class PostQueries:
    """Post queries of Repository (see feedapp.repository)."""

    def create_post(self, author_id: ObjectId, content: str, post_id: ObjectId | None = None):
        """Insert a post (with post_id, when given); the document, or None when a post with
        that id is already there (an earlier attempt of the same request stored it)."""
        doc = {"_id": post_id or ObjectId(), "author_id": author_id, "content": content,
               "created_at": shared.utcnow(), "likes_count": 0}
        try:
            self.db.posts.insert_one(doc)
        except DuplicateKeyError:
            return None
        return self._then_count(doc, [(("user", author_id), {"posts_count": 1})])

    def reserve_post(self, author_id: ObjectId, key: str, body_hash: str) -> dict:
        """The reservation of an idempotency key: {"_id", "post_id", "body", "answer"}.
        Inserting it is the atomic claim (its _id is author and key): the first request makes
        it with a new post id, every repetition finds that one, so one key means one post."""
        reservation = {"_id": f"{author_id}:{key}", "post_id": ObjectId(), "body": body_hash,
                       "answer": None, "at": shared.utcnow()}
        try:
            self.db.idempotency.insert_one(reservation)
        except DuplicateKeyError:
            return self.db.idempotency.find_one({"_id": reservation["_id"]})
        return reservation

    def keep_answer(self, reservation_id: str, answer: dict):
        """Remember the answer of a reserved request, for its repetitions."""
        self.db.idempotency.update_one({"_id": reservation_id}, {"$set": {"answer": answer}})

    def get_post(self, post_id: ObjectId):
        return self.db.posts.find_one({"_id": post_id})

    def get_posts(self, post_ids) -> dict:
        """Posts by id, as {id: doc}; unknown ids are left out."""
        return {doc["_id"]: doc for doc in self.db.posts.find({"_id": {"$in": list(post_ids)}})}

    def delete_post(self, post_id: ObjectId):
        """Delete a post and its likes; return the deleted document or None."""
        doc = self.db.posts.find_one_and_delete({"_id": post_id})
        if doc is None:
            return None
        # A gone post's recount drops its likes.
        return self._then_count(doc, [(("user", doc["author_id"]), {"posts_count": -1}),
                                      (("post", post_id), lambda: self.delete_likes_of(post_id))])

    def timeline(self, author_id: ObjectId, limit: int, before: PostCursor | None = None):
        """The author's posts, newest first: up to `limit` documents older than `before`."""
        query = {"author_id": author_id, **_older_than(before)}
        return shared.page(self.db.posts, query, NEWEST_FIRST, limit)

    def feed(self, user_id: ObjectId, limit: int, before: PostCursor | None = None):
        """Posts by the users user_id follows, newest first (see timeline)."""
        authors = self.following_ids(user_id)
        if not authors:
            return []
        query = {"author_id": {"$in": authors}, **_older_than(before)}
        return shared.page(self.db.posts, query, NEWEST_FIRST, limit)

    def explore(self, q=None, author_id=None, sort="recent", page=1, page_size=20):
        """One page of the explore listing and the total number of matches."""
        query = {}
        if q:
            query["content"] = {"$regex": re.escape(q), "$options": "i"}
        if author_id is not None:
            query["author_id"] = author_id
        order = POPULAR_FIRST if sort == "popular" else NEWEST_FIRST
        posts = self._explore_posts()
        cursor = posts.find(query).sort(order).skip((page - 1) * page_size).limit(page_size)
        return list(cursor), posts.count_documents(query)

    def _explore_posts(self):
        if self.explore_read_preference is None:
            return self.db.posts
        return self.db.posts.with_options(read_preference=self.explore_read_preference)


def _older_than(cursor: PostCursor | None) -> dict:
    if cursor is None:
        return {}
    return {
        "$or": [
            {"created_at": {"$lt": cursor.created_at}},
            {"created_at": cursor.created_at, "_id": {"$lt": cursor.id}},
        ]
    }
