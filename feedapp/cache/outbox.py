"""Invalidations that could not reach Redis, kept in the store (MongoDB) until applied.

When a write's L2 invalidation fails (Redis down, paused, partitioned), its keys are added
here as well as to the writing worker's memory, so they survive that worker's death and are
visible to every worker. Every worker drains the outbox when its invalidation listener
(re)subscribes, before it trusts L1 or L2 again (see TieredCache.drain_outbox): after a
Redis outage no worker reads an L2 value that a write during the outage made stale.

An entry older than the longest L2 TTL can only name values that have expired by
themselves, so a TTL index removes it (MongoDB; other stores keep it until it is drained).
"""
from datetime import datetime, timezone

from pymongo import ASCENDING, IndexModel

COLLECTION = "cache_outbox"


class Outbox:
    def __init__(self, db, max_age_seconds: int):
        self._db = db
        self._max_age = int(max_age_seconds)

    @property
    def _collection(self):
        # Looked up per call: the embedded store's collections belong to the thread that made them.
        return self._db[COLLECTION]

    def ensure_index(self):
        self._collection.create_indexes([IndexModel([("at", ASCENDING)], expireAfterSeconds=self._max_age)])

    def add(self, keys, prefixes):
        """Record an invalidation to apply later (raises the store's error when it is down)."""
        self._collection.insert_one({"k": list(keys), "p": list(prefixes), "at": datetime.now(timezone.utc)})

    def pending(self, limit: int = 1000) -> list:
        """The oldest entries not yet applied: [{"_id", "k", "p"}]."""
        return list(self._collection.find({}, {"k": 1, "p": 1}).sort("at", ASCENDING).limit(limit))

    def done(self, ids):
        """Forget entries once applied."""
        if ids:
            self._collection.delete_many({"_id": {"$in": list(ids)}})
