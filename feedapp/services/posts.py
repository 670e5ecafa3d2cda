"""Posts, likes, timelines, home feeds and the explore listing."""
from bson import ObjectId

from .. import cursors
from ..errors import forbidden, not_found
from ..schemas import post_core_schema, post_representation


class PostService:
    def __init__(self, repo, cache, keys, profiles):
        self.repo = repo
        self.cache = cache
        self.keys = keys
        self.profiles = profiles

    # --- single posts ----------------------------------------------------------------------

    def create(self, author_id, content: str) -> dict:
        """Store a post; once this returns it heads its author's timeline and followers' feeds."""
        doc = self.repo.create_post(author_id, content)
        self.cache.invalidate(
            keys=[self.keys.profile(author_id)],
            prefixes=[self.keys.timeline_prefix(author_id)],
        )
        return self._compose([post_core_schema.dump(doc)])[0]

    def get(self, post_id) -> dict:
        core = self.cache.get_or_load(self.keys.post(post_id), lambda: self._load_core(post_id))
        if core is None:
            raise not_found("Post")
        return self._compose([core])[0]

    def delete(self, post_id, user_id, is_admin: bool):
        """Delete a post (its author or an admin); it vanishes from every listing at once."""
        doc = self.repo.get_post(post_id)
        if doc is None:
            raise not_found("Post")
        if doc["author_id"] != user_id and not is_admin:
            raise forbidden("Only the author or an admin may delete this post")
        if self.repo.delete_post(post_id) is None:
            raise not_found("Post")
        author_id = doc["author_id"]
        self.cache.invalidate(
            keys=[self.keys.post(post_id), self.keys.profile(author_id)],
            prefixes=[self.keys.timeline_prefix(author_id)],
        )

    def set_liked(self, user_id, post_id, liked: bool) -> dict:
        """Like or unlike (idempotent); likes_count is exact on the next read anywhere."""
        count = (self.repo.like if liked else self.repo.unlike)(user_id, post_id)
        if count is None:
            raise not_found("Post")
        self.cache.invalidate(keys=[self.keys.post(post_id)])
        return {"liked": liked, "likes_count": count}

    # --- listings ----------------------------------------------------------------------------

    def timeline(self, user_id, limit: int, before: str | None) -> dict:
        """A page of user_id's own posts, newest first."""
        position = cursors.decode_post_cursor(before) if before else None
        self.profiles.get(user_id)  # 404 for an unknown user
        page = self.cache.get_or_load(
            self.keys.timeline(user_id, limit, before),
            lambda: self._load_page(self.repo.timeline, user_id, limit, position),
        )
        return self._expand(page)

    def feed(self, user_id, limit: int, before: str | None) -> dict:
        """A page of user_id's home feed: posts by whom they follow, newest first."""
        position = cursors.decode_post_cursor(before) if before else None
        self.profiles.get(user_id)
        page = self.cache.get_or_load(
            self.keys.feed(user_id, limit, before),
            lambda: self._load_page(self.repo.feed, user_id, limit, position),
        )
        return self._expand(page)

    def explore(self, filters: dict) -> dict:
        """The explore listing for one normalized filter set."""
        normalized = {
            "q": (filters.get("q") or "").lower() or None,
            "author": str(filters["author"]) if filters.get("author") else None,
            "sort": filters["sort"],
            "page": filters["page"],
            "page_size": filters["page_size"],
        }
        page = self.cache.get_or_load(
            self.keys.explore(normalized), lambda: self._load_explore(filters)
        )
        return {**self._expand(page), "page": filters["page"], "page_size": filters["page_size"]}

    # --- loading and composing ------------------------------------------------------------------

    def _load_core(self, post_id):
        doc = self.repo.get_post(post_id)
        return None if doc is None else post_core_schema.dump(doc)

    def _load_page(self, query, owner_id, limit, position):
        docs = query(owner_id, limit + 1, position)
        more = len(docs) > limit
        docs = docs[:limit]
        return {
            "items": [post_core_schema.dump(doc) for doc in docs],
            "next_cursor": cursors.encode_post_cursor(docs[-1]) if more else None,
        }

    def _load_explore(self, filters):
        docs, total = self.repo.explore(
            q=filters.get("q") or None,
            author_id=filters.get("author"),
            sort=filters["sort"],
            page=filters["page"],
            page_size=filters["page_size"],
        )
        return {"items": [post_core_schema.dump(doc) for doc in docs], "total": total}

    def _expand(self, page: dict) -> dict:
        return {**page, "items": self._compose(page["items"])}

    def _compose(self, cores: list) -> list:
        authors = self.profiles.many(ObjectId(core["author_id"]) for core in cores)
        return [post_representation(core, authors.get(ObjectId(core["author_id"]))) for core in cores]

