"""Posts, likes, timelines, home feeds and the explore listing.

What is cached, and how writes keep it exact:
- `post:{id}` holds a post without its author's names (those come from `author:{id}`, so a
  profile edit never touches posts). Likes and deletes invalidate that one key.
- `author:{id}` holds what a post shows of its author (username, display name), apart from
  `profile:{id}`: every post, follow and unfollow changes a profile's counters, and pages of
  posts that depended on the whole profile were evicted by each of them, in every worker.
- `timeline:{user}` and `feed:{user}` hold the newest LIST_CAP entries of a listing (see
  feedapp.listing and cache.postlists). A new post is written through to its author's
  timeline and, for push-mode authors, to every follower's feed (see services.fanout);
  pull-mode authors are merged in at read time. Pages are cut from these lists; a page they
  cannot vouch for (too deep, or past the end of a partial list) is read from MongoDB.
- A deleted post is not removed from lists: its `post:` entry is invalidated, the next read
  finds it absent in MongoDB, and pages skip it, so it is gone everywhere at once.
- `explore:{generation:filters}` holds one explore page (ids and total) for EXPLORE_TTL;
  deletes bump the generation (one key) instead of hunting for the pages that hold the post.
"""
import hashlib
import itertools

from bson import ObjectId

from .. import listing
from ..cache import postlists
from ..cache.postlists import PostList
from ..cache.tracing import ComposedParts, note_tier
from ..errors import forbidden, idempotency_mismatch, not_found
from ..schemas import post_core_schema, post_representation

EXPLORE_GENERATION = "explore_generation"


class PostService:
    def __init__(self, repo, cache, writer, keys, profiles, fanout, effects, list_cap: int, stats):
        self.repo = repo
        self.cache = cache
        self.writer = writer
        self.keys = keys
        self.profiles = profiles
        self.fanout = fanout
        self.effects = effects
        self.cap = list_cap
        self.stats = stats

    # --- single posts ----------------------------------------------------------------------

    def create(self, author_id, content: str, idempotency_key: str | None = None) -> dict:
        """Store a post; once this returns it heads its author's timeline and followers' feeds.

        With an idempotency key, a repetition of the request (same key, same content) answers
        what the first answered, and there is one post and one fan-out whatever failed in
        between; the same key with other content is 422."""
        # Before the commit: composing must not fail after it. The author card (names only) is
        # all a post shows, and a post does not change it, so L1 usually has it.
        author = self.profiles.author(author_id)
        post_id, reservation = None, None
        if idempotency_key is not None:
            reservation = self.repo.reserve_post(author_id, idempotency_key, _digest(content))
            if reservation["body"] != _digest(content):
                raise idempotency_mismatch()
            if reservation.get("answer") is not None:
                return reservation["answer"]
            post_id = reservation["post_id"]
        evict = [self.keys.profile(author_id), self.keys.timeline(author_id)]
        # Unconfirmed, it may be stored: then no feed may miss it (which feeds, the store that
        # failed cannot say).
        doc = self.effects.commit(lambda: self.repo.create_post(author_id, content, post_id),
                                  [("user", author_id)], evict, evict_prefixes=[self.keys.feed_prefix])
        if doc is None:  # an earlier attempt of this request stored it
            doc = self.repo.get_post(post_id)
            if doc is None:
                raise not_found("Post")  # and it has been deleted since
            self.effects.verify([("user", author_id, ("posts_count",))], evict)
        entry = listing.entry_of(doc["created_at"], doc["_id"])
        # The timeline is written through, not deleted: L2 keeps its list (every L1 drops it). The post's
        # own key may hold "absent" (ids are predictable); the profile's posts_count changed.
        self.fanout.push(author_id, entry, self.cap,
                         evict=[self.keys.profile(author_id), self.keys.post(doc["_id"])])
        answer = post_representation(post_core_schema.dump(doc), author)
        if reservation is not None:
            self.effects.after_commit(lambda: self.repo.keep_answer(reservation["_id"], answer))
        return answer

    def get(self, post_id) -> dict:
        core = self.cache.get_or_load(self.keys.post(post_id), lambda: self._load_core(post_id))
        if core is None:
            raise not_found("Post")
        return self._compose([core])[0]

    def delete(self, post_id, user_id):
        """Delete a post (its author or an admin); it vanishes from every listing at once."""
        doc = self.repo.get_post(post_id)
        if doc is None:
            raise not_found("Post")
        if doc["author_id"] != user_id and not self.profiles.is_admin(user_id):
            raise forbidden("Only the author or an admin may delete this post")
        author = doc["author_id"]
        evict = [self.keys.post(post_id), self.keys.profile(author), self.keys.meta(EXPLORE_GENERATION)]
        deleted = self.effects.commit(lambda: self.repo.delete_post(post_id),
                                      [("user", author), ("post", post_id)], evict)
        if deleted is None:
            raise not_found("Post")
        self.effects.bump(EXPLORE_GENERATION)
        self.writer.invalidate(keys=evict)

    def set_liked(self, user_id, post_id, liked: bool) -> dict:
        """Like or unlike (idempotent); likes_count is exact on the next read anywhere."""
        before = self.repo.likes_count(post_id)
        evict = [self.keys.post(post_id)]
        write = self.repo.like if liked else self.repo.unlike
        result = None if before is None else self.effects.commit(lambda: write(user_id, post_id),
                                                                 [("post", post_id)], evict)
        if result is None:
            raise not_found("Post")
        count, changed = result
        if not changed:  # already so: perhaps by an earlier attempt whose reply was lost
            if liked and self.repo.like_settled(user_id, post_id):
                pass  # that attempt finished every effect: a double tap, a retry of an answered request
            elif self.effects.verify([("post", post_id)], evict):
                count = self.repo.likes_count(post_id)  # the recount corrected it
        else:
            self.writer.invalidate(keys=evict)
            if liked and count is not None:  # counted and evicted everywhere: nothing left to redo
                self.effects.after_commit(lambda: self.repo.settle_like(user_id, post_id))
        if count is None:  # committed, but the count could not be read: recounted later
            count = max(0, before + (1 if liked else -1))
        return {"liked": liked, "likes_count": count}

    # --- listings ----------------------------------------------------------------------------

    def timeline(self, user_id, limit: int, before: str | None) -> dict:
        """A page of user_id's own posts, newest first."""
        position = listing.decode_post_cursor(before) if before else None

        def build():
            self.profiles.author(user_id)  # 404 for an unknown user
            head = self._timeline_list(user_id)
            return self._page([head], limit, position, lambda: self.repo.timeline(user_id, limit + 1, position),
                              "timeline")

        return self.cache.composed(self.keys.page("timeline", user_id, limit, before), build)

    def feed(self, user_id, limit: int, before: str | None) -> dict:
        """A page of user_id's home feed: posts by whom they follow, newest first."""
        position = listing.decode_post_cursor(before) if before else None

        def build():
            self.profiles.author(user_id)  # 404 for an unknown user
            head = self.cache.get_or_load(self.keys.feed(user_id), lambda: self._load_feed(user_id))
            lists = [head] + [self._timeline_list(ObjectId(a)) for a in head.pull]
            return self._page(lists, limit, position, lambda: self.repo.feed(user_id, limit + 1, position), "feed",
                              authors=head.authors)

        return self.cache.composed(self.keys.page("feed", user_id, limit, before), build)

    def explore(self, filters: dict) -> dict:
        """The explore listing for one normalized filter set."""
        normalized = {
            # Exactly what the query is given (the key hashes it): case-folding here would let
            # strings the query tells apart ("İ" and "i̇") share one cached page.
            "q": filters.get("q") or None,
            "author": str(filters["author"]) if filters.get("author") else None,
            "sort": filters["sort"],
            "page": filters["page"],
            "page_size": filters["page_size"],
        }
        generation = self.cache.get_or_load(
            self.keys.meta(EXPLORE_GENERATION), lambda: self.repo.counter(EXPLORE_GENERATION)
        )
        page = self.cache.get_or_load(
            self.keys.explore(normalized, generation), lambda: self._load_explore(filters)
        )
        cores = self._cores(page["ids"])
        items = [cores[pid] for pid in page["ids"] if cores[pid] is not None]
        return {"items": self._compose(items), "page": filters["page"],
                "page_size": filters["page_size"], "total": page["total"]}

    # --- pages from post lists ------------------------------------------------------------------

    def _page(self, lists, limit, position, from_store, family, authors=None) -> dict:
        """A page cut from cached post lists; authors: show only their posts (a feed's)."""
        entries, floor = postlists.newest(lists, listing.entry_of_cursor(position) if position else None)
        items, last, exhausted = [], None, False
        while len(items) < limit and not exhausted:
            chunk = list(itertools.islice(entries, limit - len(items)))
            exhausted = len(chunk) < limit - len(items)  # no entry left above the floor
            cores = self._cores([listing.post_id_of(e) for e in chunk])
            for e in chunk:
                core = cores[listing.post_id_of(e)]
                if core is not None and (authors is None or core["author_id"] in authors):
                    items.append(core)
                    last = e
        if not exhausted:
            exhausted = next(entries, None) is None  # the page ended with the last entry
        exhausted = exhausted and floor is None
        if len(items) < limit and not exhausted:
            return self._page_from_store(from_store, limit, family)
        more = not exhausted
        return {
            "items": self._compose(items),
            "next_cursor": listing.encode_entry_cursor(last) if more and last else None,
        }

    def _page_from_store(self, from_store, limit, family) -> dict:
        """A page the cached lists cannot vouch for, straight from MongoDB."""
        ComposedParts.spoil()  # nothing cached vouches for it: no composed page is kept either
        note_tier("L3")
        self.stats.count(f"l3.reads.{family}")
        docs = from_store()
        more = len(docs) > limit
        docs = docs[:limit]
        return {
            "items": self._compose([post_core_schema.dump(d) for d in docs]),
            "next_cursor": listing.encode_post_cursor(docs[-1]) if more else None,
        }

    # --- loading and composing ------------------------------------------------------------------

    def _timeline_list(self, user_id) -> PostList:
        return self.cache.get_or_load(
            self.keys.timeline(user_id),
            lambda: PostList.from_docs(self.repo.timeline(user_id, self.cap + 1), self.cap),
        )

    def _load_feed(self, user_id) -> PostList:
        authors = self.repo.following_ids(user_id)
        pull = self.repo.pull_followees(user_id)
        return PostList.from_docs(self.repo.feed(user_id, self.cap + 1), self.cap, pull=pull, authors=authors)

    def _load_core(self, post_id):
        doc = self.repo.get_post(post_id)
        return None if doc is None else post_core_schema.dump(doc)

    def _cores(self, post_ids) -> dict:
        """Post cores by id string ({id: core or None})."""
        keys = {self.keys.post(pid): pid for pid in post_ids}
        found = self.cache.get_many_or_load(keys, self._load_cores)
        return {pid: found[key] for key, pid in keys.items()}

    def _load_cores(self, post_ids) -> dict:
        docs = self.repo.get_posts(ObjectId(pid) for pid in post_ids)
        return {str(oid): post_core_schema.dump(doc) for oid, doc in docs.items()}

    def _load_explore(self, filters):
        docs, total = self.repo.explore(
            q=filters.get("q") or None,
            author_id=filters.get("author"),
            sort=filters["sort"],
            page=filters["page"],
            page_size=filters["page_size"],
        )
        return {"ids": [str(doc["_id"]) for doc in docs], "total": total}

    def _compose(self, cores: list) -> list:
        authors = self.profiles.authors(ObjectId(core["author_id"]) for core in cores)
        return [post_representation(core, authors.get(ObjectId(core["author_id"]))) for core in cores]


def _digest(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
