"""Follows: follow, unfollow, and the follow lists."""
from pymongo.errors import PyMongoError

from .. import listing
from ..errors import not_found, validation_error
from ..schemas import profile_schema


class FollowService:
    def __init__(self, repo, writer, keys, fanout, effects):
        self.repo = repo
        self.writer = writer
        self.keys = keys
        self.fanout = fanout
        self.effects = effects

    def set_following(self, follower_id, followee_id, following: bool) -> dict:
        """Follow or unfollow (idempotent); once it returns, the follower's next feed read and
        both users' counts reflect it."""
        if follower_id == followee_id:
            raise validation_error({"id": ["You cannot follow yourself."]}, "You cannot follow yourself")
        if self.repo.get_user(followee_id) is None:
            raise not_found("User")
        targets = [("user", follower_id), ("user", followee_id)]
        touched = [self.keys.profile(follower_id), self.keys.profile(followee_id), self.keys.feed(follower_id)]
        write = self.repo.follow if following else self.repo.unfollow
        changed = self.effects.commit(lambda: write(follower_id, followee_id), targets, touched)
        if not changed:  # already so: perhaps by an earlier attempt whose reply was lost
            if following and self.repo.follow_settled(follower_id, followee_id):
                return {"following": True}  # that attempt finished every effect
            # Only the two counters a follow changes can have been left behind by it.
            self.effects.verify([("user", follower_id, ("following_count",)),
                                 ("user", followee_id, ("followers_count",))], touched)
            return {"following": following}
        self.writer.invalidate(keys=touched)
        if following:
            try:
                self.fanout.settle_mode(followee_id)  # a newly popular author moves to pull
            except PyMongoError:
                pass  # the follow stands; the author's next post settles the mode
            self.effects.after_commit(lambda: self.repo.settle_follow(follower_id, followee_id))
        return {"following": following}

    def page(self, user_id, direction: str, limit: int, before: str | None) -> dict:
        """One page of whom user_id follows ("following") or who follows them ("followers")."""
        before_id = listing.decode_follow_cursor(before) if before else None
        if self.repo.get_user(user_id) is None:
            raise not_found("User")
        users, last = self.repo.follow_page(user_id, direction, limit, before_id)
        return {
            "items": [profile_schema.dump(doc) for doc in users],
            "next_cursor": listing.encode_follow_cursor(last) if last else None,
        }
