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
(feedapp/cache/invalidation/recovery.py), not this module's.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]
POPULAR_FIRST = [("likes_count", DESCENDING)] + NEWEST_FIRST
UPSERT_ATTEMPTS = 3  # after a lost race the document exists, so the next attempt updates it

INDEXES = {
    "users": [
        IndexModel([("username_lower", ASCENDING)], unique=True, name="username_unique"),
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
        IndexModel([("followers_count", DESCENDING)], name="most_followed"),
    ],
    "follows": [
        IndexModel(
            [("follower_id", ASCENDING), ("followee_id", ASCENDING)],
            unique=True,
            name="follow_unique",
        ),
        IndexModel([("follower_id", ASCENDING), ("_id", DESCENDING)], name="following_list"),
        IndexModel([("followee_id", ASCENDING), ("_id", DESCENDING)], name="followers_list"),
    ],
    "posts": [
        IndexModel([("author_id", ASCENDING)] + NEWEST_FIRST, name="timeline"),
        IndexModel(NEWEST_FIRST, name="recent"),
        IndexModel(POPULAR_FIRST, name="popular"),
    ],
    "likes": [
        IndexModel([("user_id", ASCENDING), ("post_id", ASCENDING)], unique=True, name="like_unique"),
        IndexModel([("post_id", ASCENDING)], name="likes_of_post"),
    ],
    # Idempotency keys of POST /api/posts: kept two days (MongoDB expires them then; the
    # embedded store keeps them), API.md promises at least one.
    "idempotency": [IndexModel([("at", ASCENDING)], expireAfterSeconds=2 * 24 * 3600, name="expiry")],
}


_COLLECTION = {"user": "users", "post": "posts"}
# Each counter and where it is counted from: (collection, field naming the counted document).
_SOURCES = {
    "user": {
        "posts_count": ("posts", "author_id"),
        "followers_count": ("follows", "followee_id"),
        "following_count": ("follows", "follower_id"),
    },
    "post": {"likes_count": ("likes", "post_id")},
}


class Unfinished(Exception):
    """A write committed, but counters derived from it could not be updated: `result` is what
    the write returns, `recounts` the (kind, id) whose counters must be recounted."""

    def __init__(self, result, recounts, cause):
        super().__init__(f"committed, but the counters of {recounts} were not updated: {cause!r}")
        self.result = result
        self.recounts = recounts


class DuplicateError(Exception):
    """A unique field is taken; `field` names it."""

    def __init__(self, field):
        super().__init__(f"{field} already taken")
        self.field = field


@dataclass(frozen=True)
class PostCursor:
    """Position in a newest-first post listing: strictly older than (created_at, id)."""

    created_at: datetime
    id: ObjectId


def utcnow() -> datetime:
    """Now, as the store keeps it: naive UTC, millisecond precision."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _older_than(cursor: PostCursor | None) -> dict:
    if cursor is None:
        return {}
    return {
        "$or": [
            {"created_at": {"$lt": cursor.created_at}},
            {"created_at": cursor.created_at, "_id": {"$lt": cursor.id}},
        ]
    }


def _page(collection, query, sort, limit):
    return list(collection.find(query).sort(sort).limit(limit))


def _upsert(collection, query, update, attempts=UPSERT_ATTEMPTS):
    """find_one_and_update(upsert=True): the document after the update, also when concurrent
    upserts race to create it. MongoDB may refuse the loser with DuplicateKeyError (nothing
    was written: try again, it now matches); SecantusDB sometimes applies an upsert yet
    answers None (read it back: applying it again would count it twice)."""
    for attempt in range(attempts):
        try:
            doc = collection.find_one_and_update(query, update, upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            if attempt == attempts - 1:
                raise
            continue
        return doc if doc is not None else collection.find_one(query)


class Repository:
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

    # --- users -------------------------------------------------------------------------

    def create_user(self, username, email, password_hash, display_name):
        """Insert a user; raise DuplicateError("username" | "email") when one is taken."""
        doc = {
            "username": username,
            "username_lower": username.lower(),
            "email": email.lower(),
            "password_hash": password_hash,
            "display_name": display_name,
            "bio": "",
            "avatar_url": None,
            "role": "user",
            "followers_count": 0,
            "following_count": 0,
            "posts_count": 0,
            "created_at": utcnow(),
        }
        try:
            self.db.users.insert_one(doc)
        except DuplicateKeyError as err:
            raise DuplicateError(self._duplicate_field(err, doc)) from None
        return doc

    def _duplicate_field(self, err: DuplicateKeyError, doc: dict) -> str:
        # MongoDB and the embedded store name the violated key; mongomock says only "E11000":
        # ask the store which one is taken.
        pattern = (err.details or {}).get("keyPattern")
        if pattern:
            return "email" if "email" in pattern else "username"
        query = {"username_lower": doc["username_lower"], "_id": {"$ne": doc.get("_id")}}
        return "username" if self.db.users.find_one(query, {"_id": 1}) else "email"

    def get_user(self, user_id: ObjectId):
        return self.db.users.find_one({"_id": user_id})

    def get_user_by_username(self, username: str):
        return self.db.users.find_one({"username_lower": username.lower()})

    def get_user_by_login(self, login: str):
        """Find a user by username or by email (both case-insensitive)."""
        field = "email" if "@" in login else "username_lower"
        return self.db.users.find_one({field: login.lower()})

    def most_followed(self, limit: int) -> list:
        """Ids of the `limit` users with the most followers."""
        cursor = self.db.users.find({}, {"_id": 1}).sort([("followers_count", DESCENDING)]).limit(limit)
        return [doc["_id"] for doc in cursor]

    def get_users(self, user_ids) -> dict:
        """Users by id, as {id: doc}; unknown ids are left out."""
        return {doc["_id"]: doc for doc in self.db.users.find({"_id": {"$in": list(user_ids)}})}

    def update_profile(self, user_id: ObjectId, changes: dict):
        """Set profile fields; return the updated document (None if the user is gone)."""
        if not changes:
            return self.get_user(user_id)
        return self.db.users.find_one_and_update(
            {"_id": user_id}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )

    def set_role(self, username: str, role: str):
        return self.db.users.find_one_and_update(
            {"username_lower": username.lower()},
            {"$set": {"role": role}},
            return_document=ReturnDocument.AFTER,
        )

    def inc(self, what: str, ident, **counters):
        """Add to the counters of a user or post ("user" | "post")."""
        self.db[_COLLECTION[what]].update_one({"_id": ident}, {"$inc": counters})

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

    def counters(self, what: str, ident) -> tuple:
        """(stored, counted): a user's or post's counters as stored and as their source
        counts them; stored is None when the document is gone."""
        stored = self.db[_COLLECTION[what]].find_one({"_id": ident}, list(_SOURCES[what]))
        if stored is None:
            return None, None
        counted = {name: self.db[source].count_documents({field: ident})
                   for name, (source, field) in _SOURCES[what].items()}
        return {name: stored.get(name, 0) for name in counted}, counted

    def set_counters_if(self, what: str, ident, seen: dict, truth: dict) -> bool:
        """Set counters to truth if they still hold seen (compare-and-set); True if it did."""
        result = self.db[_COLLECTION[what]].update_one({"_id": ident, **seen}, {"$set": truth})
        return result.modified_count == 1

    # --- follows -----------------------------------------------------------------------

    def follow(self, follower_id: ObjectId, followee_id: ObjectId) -> bool:
        """Record the follow; True if it is new, False if it already existed."""
        try:
            self.db.follows.insert_one(
                {"follower_id": follower_id, "followee_id": followee_id, "created_at": utcnow()}
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

    def counter(self, name: str) -> int:
        """A deployment-wide counter (0 until first bumped)."""
        doc = self.db.meta.find_one({"_id": name})
        return doc["value"] if doc else 0

    def bump_counter(self, name: str) -> int:
        """Add one to a deployment-wide counter (made by its first bump); its value afterwards."""
        return _upsert(self.db.meta, {"_id": name}, {"$inc": {"value": 1}})["value"]

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
        records = _page(self.db.follows, query, [("_id", DESCENDING)], limit + 1)
        more = len(records) > limit
        records = records[:limit]
        users = self.get_users(r[other] for r in records)
        items = [users[r[other]] for r in records if r[other] in users]
        return items, (records[-1]["_id"] if more else None)

    # --- posts -------------------------------------------------------------------------

    def create_post(self, author_id: ObjectId, content: str, post_id: ObjectId | None = None):
        """Insert a post (with post_id, when given); the document, or None when a post with
        that id is already there (an earlier attempt of the same request stored it)."""
        doc = {"_id": post_id or ObjectId(), "author_id": author_id, "content": content,
               "created_at": utcnow(), "likes_count": 0}
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
                       "answer": None, "at": utcnow()}
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

    def delete_likes_of(self, post_id: ObjectId):
        """Remove the likes of a deleted post."""
        self.db.likes.delete_many({"post_id": post_id})

    def like(self, user_id: ObjectId, post_id: ObjectId):
        """Like a post: (likes_count afterwards, True if the like is new), or None if the post
        is gone."""
        if self.get_post(post_id) is None:
            return None
        try:
            self.db.likes.insert_one({"user_id": user_id, "post_id": post_id, "created_at": utcnow()})
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

    def has_liked(self, user_id: ObjectId, post_id: ObjectId) -> bool:
        return self.db.likes.find_one({"user_id": user_id, "post_id": post_id}) is not None

    def timeline(self, author_id: ObjectId, limit: int, before: PostCursor | None = None):
        """The author's posts, newest first: up to `limit` documents older than `before`."""
        query = {"author_id": author_id, **_older_than(before)}
        return _page(self.db.posts, query, NEWEST_FIRST, limit)

    def feed(self, user_id: ObjectId, limit: int, before: PostCursor | None = None):
        """Posts by the users user_id follows, newest first (see timeline)."""
        authors = self.following_ids(user_id)
        if not authors:
            return []
        query = {"author_id": {"$in": authors}, **_older_than(before)}
        return _page(self.db.posts, query, NEWEST_FIRST, limit)

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

    def insert_many(self, collection: str, docs: list, batch: int = 1000):
        """Bulk insert (seeding and benchmarks), in batches."""
        for start in range(0, len(docs), batch):
            self.db[collection].insert_many(docs[start:start + batch])

    def is_empty(self) -> bool:
        return self.db.users.find_one({}, {"_id": 1}) is None
