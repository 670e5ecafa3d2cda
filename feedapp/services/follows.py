"""Follows: follow, unfollow, and the follow lists."""
from .. import cursors
from ..errors import not_found, validation_error
from ..schemas import profile_schema
from .completions import Completions


class FollowService:
    def __init__(self, repo, cache, keys, fanout, completions=None):
        self.completions = completions or Completions(repo, cache, keys)
        self.repo = repo
        self.cache = cache
        self.keys = keys
        self.fanout = fanout

    def set_following(self, follower_id, followee_id, following: bool) -> dict:
        """Follow or unfollow (idempotent); the follower's next feed read reflects it."""
        if follower_id == followee_id:
            raise validation_error({"id": ["You cannot follow yourself."]}, "You cannot follow yourself")
        if self.repo.get_user(followee_id) is None:
            raise not_found("User")
        self.completions.settle()
        changed = (self.repo.follow if following else self.repo.unfollow)(follower_id, followee_id)
        if changed:
            try:
                if following:
                    self.fanout.mode(followee_id)  # may move a newly popular author to pull
            finally:  # the follow committed: its caches go even if the store fails now
                self.cache.invalidate(keys=[
                    self.keys.profile(follower_id),
                    self.keys.profile(followee_id),
                    self.keys.feed(follower_id),
                ])
        return {"following": following}

    def page(self, user_id, direction: str, limit: int, before: str | None) -> dict:
        """One page of whom user_id follows ("following") or who follows them ("followers")."""
        before_id = cursors.decode_follow_cursor(before) if before else None
        if self.repo.get_user(user_id) is None:
            raise not_found("User")
        users, last = self.repo.follow_page(user_id, direction, limit, before_id)
        return {
            "items": [profile_schema.dump(doc) for doc in users],
            "next_cursor": cursors.encode_follow_cursor(last) if last else None,
        }
