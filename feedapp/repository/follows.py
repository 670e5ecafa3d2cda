"""Follows, the follow lists, and each author's fan-out mode (see services.fanout)."""
from bson import ObjectId
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from . import shared


class FollowQueries:
    """Follow queries of Repository (see feedapp.repository)."""

    def follow(self, follower_id: ObjectId, followee_id: ObjectId) -> bool:
        """Record the follow; True if it is new, False if it already existed."""
        try:
            self.db.follows.insert_one(
                {"follower_id": follower_id, "followee_id": followee_id, "created_at": shared.utcnow()}
            )
        except DuplicateKeyError:
            return False
        return self._then_count(True, [(("user", follower_id), {"following_count": 1}),
                                       (("user", followee_id), {"followers_count": 1})])

    def unfollow(self, follower_id: ObjectId, followee_id: ObjectId) -> bool:
        """Remove the follow; True if there was one."""
        result = self.db.follows.delete_one({"follower_id": follower_id, "followee_id": followee_id})
        if result.deleted_count != 1:
            return False
        return self._then_count(True, [(("user", follower_id), {"following_count": -1}),
                                       (("user", followee_id), {"followers_count": -1})])

    def settle_follow(self, follower_id: ObjectId, followee_id: ObjectId):
        """Mark a follow whose every effect (its counts, the evictions) is done: a repeat of it
        has nothing to redo."""
        self.db.follows.update_one({"follower_id": follower_id, "followee_id": followee_id},
                                   {"$set": {"settled": True}})

    def follow_settled(self, follower_id: ObjectId, followee_id: ObjectId) -> bool:
        """Whether that follow exists and is settled (`settle_follow`)."""
        found = self.db.follows.find_one({"follower_id": follower_id, "followee_id": followee_id}, {"settled": 1})
        return found is not None and found.get("settled") is True

    def following_ids(self, user_id: ObjectId) -> list:
        cursor = self.db.follows.find({"follower_id": user_id}, {"followee_id": 1})
        return [doc["followee_id"] for doc in cursor]

    def follower_ids(self, user_id: ObjectId, limit: int = 0) -> list:
        """Ids of user_id's followers (at most `limit` when it is > 0)."""
        cursor = self.db.follows.find({"followee_id": user_id}, {"follower_id": 1}).limit(limit)
        return [doc["follower_id"] for doc in cursor]

    def pull_followees(self, user_id: ObjectId) -> list:
        """Ids of the users user_id follows whose posts are merged at read time (see Fanout)."""
        followees = self.following_ids(user_id)
        if not followees:
            return []
        query = {"_id": {"$in": followees}, "fanout": {"$in": ["both", "pull"]}}
        return [doc["_id"] for doc in self.db.users.find(query, {"_id": 1})]

    def fanout_state(self, user_id: ObjectId):
        """(fan-out mode, followers_count) of a user, or None when there is no such user."""
        doc = self.db.users.find_one({"_id": user_id}, {"fanout": 1, "followers_count": 1})
        return None if doc is None else (doc.get("fanout", "push"), doc.get("followers_count", 0))

    def set_fanout(self, user_id: ObjectId, mode: str, current: tuple) -> bool:
        """Move user_id to fan-out `mode` if its mode is one of `current`; True if this call did."""
        condition = {"fanout": {"$in": list(current)}}
        if "push" in current:  # users start in push mode without the field
            condition = {"$or": [{"fanout": {"$exists": False}}, condition]}
        result = self.db.users.update_one({"_id": user_id, **condition}, {"$set": {"fanout": mode}})
        return result.modified_count == 1

    def follow_page(self, user_id, direction, limit, before=None):
        """One page of a follow list, newest follow first.

        direction is "following" (whom user_id follows) or "followers". Returns
        (user docs in order, id of the last follow record or None when there is no more).
        """
        me, other = ("follower_id", "followee_id")
        if direction == "followers":
            me, other = other, me
        query = {me: user_id}
        if before is not None:
            query["_id"] = {"$lt": before}
        records = shared.page(self.db.follows, query, [("_id", DESCENDING)], limit + 1)
        more = len(records) > limit
        records = records[:limit]
        users = self.get_users(r[other] for r in records)
        items = [users[r[other]] for r in records if r[other] in users]
        return items, (records[-1]["_id"] if more else None)
