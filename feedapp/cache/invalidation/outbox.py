"""Work a write could not finish, kept in the store (MongoDB) until some worker finishes it.

A write that could not evict what it changed from Redis (down, paused, partitioned from this
worker alone) records the eviction here, so that every worker's recovery sees it: each stops
trusting its caches until the eviction has been applied to L2 and published to every L1, and
only then is the entry deleted. Counters that could not be updated are recorded here too when
the store answers, so that any worker can recount them if the writing one dies.

Entries: {"kind": "evict", "keys": [...], "prefixes": [...]}, {"kind": "recount", "what":
"user" | "post", "id": ObjectId} or {"kind": "bump", "name": ...}, each with "at". An entry
older than the longest L2 TTL can only name values that have expired by themselves, so a TTL
index removes it (MongoDB; the embedded store keeps it until it is applied).
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

    def add(self, entry: dict):
        """Record an entry (raises the store's error when it is down); its id."""
        document = {**entry, "at": datetime.now(timezone.utc)}
        self._collection.insert_one(document)
        return document["_id"]

    def pending(self, limit: int = 100) -> list:
        """The oldest entries not yet finished."""
        return list(self._collection.find({}).sort("at", ASCENDING).limit(limit))

    def done(self, ids):
        """Forget entries once finished."""
        if ids:
            self._collection.delete_many({"_id": {"$in": list(ids)}})
