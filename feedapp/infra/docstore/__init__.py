"""An embedded document store with real B-tree indexes: SQLite under a pymongo-shaped API.

feedapp runs on MongoDB when `MONGO_URI` names one; without it, every worker of a deployment
shares this store, one SQLite file in WAL mode. Documents are kept as BSON; every field named
by an index is also kept as a column holding an order-preserving key (`keycodec`), and the
index is a SQLite index over those columns. So a query whose filter and sort fall on indexed
fields is answered by SQLite alone (an index range scan in index order, `LIMIT` applied there),
and any other filter is still answered exactly: the indexed part narrows the rows in SQL and
mongomock's matcher checks each remaining document (`plan`).

Writes run in `BEGIN IMMEDIATE` transactions, so `$inc`, unique indexes and read-modify-write
updates are exact across threads and processes, as on MongoDB.

Only the part of pymongo's API that feedapp uses is offered; anything else fails loudly
(`OperationFailure` or `AttributeError`) rather than answering differently from MongoDB.
Indexed fields hold scalars only (null, numbers within ±2**53, strings, ObjectId, booleans,
dates): a write that puts an array or a document in an indexed field is refused.
"""
from .database import Database

__all__ = ["Database"]
