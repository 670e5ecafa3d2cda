"""MongoDB queries and indexes, and nothing else: no Flask, no caching.

All times are naive UTC datetimes at millisecond precision (what BSON stores), so a value
read back compares equal to the one written, on MongoDB and on the embedded store alike.
Counters are changed only by `$inc` after the write that justifies them succeeded (an insert
that did not hit a unique index, a delete that removed a document), so concurrent requests
keep them exact without read-modify-write.

Every write commits one document that is the truth (a post, a follow, a like) and then updates
the counters derived from it in other documents. MongoDB has no multi-document atomicity
without a replica set's transactions, so when a counter update fails after its write
committed (the store went away in between) the write raises `Unfinished`: it happened (its
result is on the exception) and the named counters must be recounted from the source
(`counters`, `set_counters_if`); remembering and redoing that is the recovery's job
(feedapp/cache/invalidation/recovery.py), not this package's.

`Repository` is one object over one database, its queries grouped by collection in the
modules here. They are mixed into it rather than held by it because they call one another
(a follow counts through `inc`, a feed reads `following_ids`) and all read `self.db`, which a
caller may swap on the one object.
"""
from ..listing import PostCursor
from .counters import CounterQueries
from .follows import FollowQueries
from .indexes import INDEXES, NEWEST_FIRST, POPULAR_FIRST
from .likes import LikeQueries
from .posts import PostQueries
from .shared import DuplicateError, Unfinished, utcnow
from .users import UserQueries

__all__ = [
    "INDEXES", "NEWEST_FIRST", "POPULAR_FIRST", "DuplicateError", "PostCursor", "Repository", "Unfinished",
    "utcnow",
]


class Repository(UserQueries, FollowQueries, PostQueries, LikeQueries, CounterQueries):
    """The data layer: one instance per process, over a pymongo Database."""

    def __init__(self, db, explore_read_preference=None):
        """explore_read_preference: where the explore queries read (None: like every other
        query, the client's default, the primary); see feedapp/infra/mongo.py."""
        self.db = db
        self.explore_read_preference = explore_read_preference

    def ensure_indexes(self):
        """Create every index; safe to call from every process at every start."""
        for name, models in INDEXES.items():
            self.db[name].create_indexes(models)

    def ping(self):
        self.db.command("ping")

    def insert_many(self, collection: str, docs: list, batch: int = 1000):
        """Bulk insert (seeding and benchmarks), in batches."""
        for start in range(0, len(docs), batch):
            self.db[collection].insert_many(docs[start:start + batch])

    def is_empty(self) -> bool:
        return self.db.users.find_one({}, {"_id": 1}) is None
