"""MongoDB queries and indexes, and nothing else: no Flask, no caching.

All times are naive UTC datetimes at millisecond precision (what BSON stores), so a value
read back compares equal to the one written, on MongoDB and on the embedded store alike.
Counters are changed only by `$inc` after the write that justifies them succeeded (an insert
that did not hit a unique index, a delete that removed a document), so concurrent requests
keep them exact without read-modify-write.

Every write commits one document that is the truth (a post, a follow, a like) and then updates
values derived from it in other documents (counters, the explore generation). MongoDB has no
multi-document atomicity without a replica set's transactions, so a derived update that fails
after its write committed (the store went away in between) is not reported as a failed write:
it is remembered in `repairs` and redone from the source (a recount, not a replayed `$inc`,
so it is right even when the failed `$inc` had in fact been applied) by `repair()`, which the
services run before their next write and which says which cached values to invalidate.
"""
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

log = logging.getLogger(__name__)

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
}


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
        query, the client's default, the primary); see feedapp/mongo.py."""
        self.db = db
        self.explore_read_preference = explore_read_preference
        self.repairs = Repairs()

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
        # MongoDB names the violated key; mongomock and litemongo say only "E11000", so ask.
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

    def _bump(self, collection, doc_id, **counters):
        self.db[collection].update_one({"_id": doc_id}, {"$inc": counters})

    def derived(self, repair: tuple, update, *args, **kwargs):
        """Run update(*args) for a value derived from a write that already committed; if the
        store fails now, remember `repair` ((kind, id)) instead of failing the write."""
        try:
            return update(*args, **kwargs)
        except PyMongoError as err:
            log.warning("derived update %s failed after its write committed (%r); will recount", repair, err)
            self.repairs.add(repair)
            return None

    def repair(self) -> list:
        """Redo the derived updates that failed, from the source; the (kind, id) it changed.

        Kinds: "user" (posts, followers, following counts), "post" (likes_count, or the likes
        of a deleted post), "counter" (a deployment-wide counter to bump). A recount cannot be
        atomic with other workers' `$inc`s (no multi-document transactions), so it sets the
        counters only if they still hold what it read (compare-and-set) and an item is done
        only once a pass finds counters and source agreeing without writing. Stops at the
        first store failure (the store is down: the rest waits for the next pass)."""
        changed = []
        items = self.repairs.take()
        while items:
            item = items.pop()
            try:
                done, wrote = self._redo(*item)
            except PyMongoError:
                for left in (item, *items):
                    self.repairs.add(left)
                break
            if wrote:
                changed.append(item)
            if not done:
                self.repairs.add(item)
        return changed

    def _redo(self, kind, ident) -> tuple:
        """(done, wrote) for one repair item."""
        if kind == "counter":
            self.bump_counter(ident)
            return True, True
        if kind == "user":
            truth = {
                "posts_count": self.db.posts.count_documents({"author_id": ident}),
                "followers_count": self.db.follows.count_documents({"followee_id": ident}),
                "following_count": self.db.follows.count_documents({"follower_id": ident}),
            }
            return self._set_if_unchanged("users", ident, truth)
        if self.db.posts.count_documents({"_id": ident}, limit=1):
            return self._set_if_unchanged("posts", ident, {"likes_count": self.db.likes.count_documents({"post_id": ident})})
        self.db.likes.delete_many({"post_id": ident})  # a deleted post's likes go too
        return True, True

    def _set_if_unchanged(self, collection, ident, truth: dict) -> tuple:
        stored = self.db[collection].find_one({"_id": ident}, list(truth))
        if stored is None:
            return True, False
        seen = {name: stored.get(name, 0) for name in truth}
        if seen == truth:
            return True, False
        self.db[collection].update_one({"_id": ident, **seen}, {"$set": truth})
        return False, True  # verified by the next pass

    # --- follows -----------------------------------------------------------------------

    def follow(self, follower_id: ObjectId, followee_id: ObjectId) -> bool:
        """Record the follow; True if it is new, False if it already existed."""
        try:
            self.db.follows.insert_one(
                {"follower_id": follower_id, "followee_id": followee_id, "created_at": utcnow()}
            )
        except DuplicateKeyError:
            return False
        self.derived(("user", follower_id), self._bump, "users", follower_id, following_count=1)
        self.derived(("user", followee_id), self._bump, "users", followee_id, followers_count=1)
        return True

    def unfollow(self, follower_id: ObjectId, followee_id: ObjectId) -> bool:
        """Remove the follow; True if there was one."""
        result = self.db.follows.delete_one({"follower_id": follower_id, "followee_id": followee_id})
        if result.deleted_count != 1:
            return False
        self.derived(("user", follower_id), self._bump, "users", follower_id, following_count=-1)
        self.derived(("user", followee_id), self._bump, "users", followee_id, followers_count=-1)
        return True

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

    def create_post(self, author_id: ObjectId, content: str):
        doc = {"author_id": author_id, "content": content, "created_at": utcnow(), "likes_count": 0}
        self.db.posts.insert_one(doc)
        self.derived(("user", author_id), self._bump, "users", author_id, posts_count=1)
        return doc

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
        self.derived(("user", doc["author_id"]), self._bump, "users", doc["author_id"], posts_count=-1)
        self.derived(("post", post_id), self.db.likes.delete_many, {"post_id": post_id})
        return doc

    def like(self, user_id: ObjectId, post_id: ObjectId):
        """Like a post; return its likes_count afterwards, or None if the post is gone."""
        if self.get_post(post_id) is None:
            return None
        try:
            self.db.likes.insert_one({"user_id": user_id, "post_id": post_id, "created_at": utcnow()})
        except DuplicateKeyError:
            return self._likes_count(post_id)
        return self._counted_like(post_id, 1)

    def unlike(self, user_id: ObjectId, post_id: ObjectId):
        """Remove a like; return likes_count afterwards, or None if the post is gone."""
        result = self.db.likes.delete_one({"user_id": user_id, "post_id": post_id})
        if result.deleted_count != 1:
            return self._likes_count(post_id)
        return self._counted_like(post_id, -1)

    def _counted_like(self, post_id, inc):
        """likes_count after a like or unlike that committed. If the store fails now, the count
        is repaired later and the store's error is raised (like and unlike are idempotent:
        the client's retry answers with the count)."""
        try:
            return self._likes_count(post_id, inc=inc)
        except PyMongoError:
            self.repairs.add(("post", post_id))
            raise

    def _likes_count(self, post_id, inc=0):
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


class Repairs:
    """A thread-safe set of derived updates to redo (see the module docstring)."""

    def __init__(self):
        self._items = set()
        self._lock = threading.Lock()

    def add(self, item: tuple):
        with self._lock:
            self._items.add(item)

    def take(self) -> set:
        with self._lock:
            items, self._items = self._items, set()
        return items

    def __bool__(self):
        return bool(self._items)
