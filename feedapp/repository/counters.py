"""Counters: those of a user or post, derived from other collections (followers, posts,
likes), and deployment-wide ones (the explore generation)."""
from pymongo.errors import PyMongoError

from .shared import Unfinished, upsert

COLLECTION = {"user": "users", "post": "posts"}
# Each counter and where it is counted from: (collection, field naming the counted document).
SOURCES = {
    "user": {
        "posts_count": ("posts", "author_id"),
        "followers_count": ("follows", "followee_id"),
        "following_count": ("follows", "follower_id"),
    },
    "post": {"likes_count": ("likes", "post_id")},
}


class CounterQueries:
    """Counter queries of Repository (see feedapp.repository)."""

    def inc(self, what: str, ident, **counters):
        """Add to the counters of a user or post ("user" | "post")."""
        self.db[COLLECTION[what]].update_one({"_id": ident}, {"$inc": counters})

    def _then_count(self, result, updates):
        """After a committed write: apply updates [((kind, id), counters or a callable)];
        raise Unfinished naming the targets whose update failed."""
        failed, cause = [], None
        for target, update in updates:
            try:
                update() if callable(update) else self.inc(*target, **update)
            except PyMongoError as err:
                failed.append(target)
                cause = err
        if failed:
            raise Unfinished(result, failed, cause) from cause
        return result

    def counters(self, what: str, ident, names=None) -> tuple:
        """(stored, counted): a user's or post's counters (those in `names`, default all) as
        stored and as their source counts them; stored is None when the document is gone."""
        names = list(names or SOURCES[what])
        stored = self.db[COLLECTION[what]].find_one({"_id": ident}, names)
        if stored is None:
            return None, None
        counted = {name: self.db[SOURCES[what][name][0]].count_documents({SOURCES[what][name][1]: ident})
                   for name in names}
        return {name: stored.get(name, 0) for name in counted}, counted

    def set_counters_if(self, what: str, ident, seen: dict, truth: dict) -> bool:
        """Set counters to truth if they still hold seen (compare-and-set); True if it did."""
        result = self.db[COLLECTION[what]].update_one({"_id": ident, **seen}, {"$set": truth})
        return result.modified_count == 1

    def counter(self, name: str) -> int:
        """A deployment-wide counter (0 until first bumped)."""
        doc = self.db.meta.find_one({"_id": name})
        return doc["value"] if doc else 0

    def bump_counter(self, name: str) -> int:
        """Add one to a deployment-wide counter (made by its first bump); its value afterwards."""
        return upsert(self.db.meta, {"_id": name}, {"$inc": {"value": 1}})["value"]
