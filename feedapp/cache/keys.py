"""The one key scheme. Every Redis key and every L1 key of feedapp is built here.

Layout: `<prefix>:<area>:<family>:<parts>` with prefix `feedapp:v1` by default (change the
version to move a deployment to fresh keys after a representation change). Cache entries live
under the `cache` area, auth state under `auth`, so no cache operation can reach auth keys.
Every part that comes from a client is validated (ids) or normalized and hashed (usernames,
filters) before it gets here.
"""
import hashlib
import json

CACHE_FAMILIES = ("profile", "username", "post", "timeline", "feed", "explore")


class Keys:
    def __init__(self, prefix: str = "feedapp:v1"):
        self.prefix = prefix
        self.cache_root = f"{prefix}:cache:"
        self.auth_root = f"{prefix}:auth:"
        self.families = CACHE_FAMILIES

    # --- cache entries -------------------------------------------------------------------
    def profile(self, user_id) -> str:
        return f"{self.cache_root}profile:{user_id}"

    def username(self, username: str) -> str:
        return f"{self.cache_root}username:{username.lower()}"

    def post(self, post_id) -> str:
        return f"{self.cache_root}post:{post_id}"

    def timeline_prefix(self, user_id) -> str:
        """Every cached page of user_id's own posts starts with this."""
        return f"{self.cache_root}timeline:{user_id}:"

    def timeline(self, user_id, limit: int, before: str | None) -> str:
        return f"{self.timeline_prefix(user_id)}{limit}:{before or '-'}"

    def feed_prefix(self, user_id) -> str:
        """Every cached page of user_id's home feed starts with this."""
        return f"{self.cache_root}feed:{user_id}:"

    def feed(self, user_id, limit: int, before: str | None) -> str:
        return f"{self.feed_prefix(user_id)}{limit}:{before or '-'}"

    def explore(self, filters: dict, generation: int = 0) -> str:
        return f"{self.cache_root}explore:{generation}:{digest(filters)}"

    def family(self, key: str) -> str:
        """The key family of a cache key ("profile", "feed", ...), or "other"."""
        if key.startswith(self.cache_root):
            return key[len(self.cache_root):].split(":", 1)[0]
        if key.startswith(self.auth_root):
            return "auth"
        return "other"

    # --- auth state ----------------------------------------------------------------------
    def session(self, session_id: str) -> str:
        return f"{self.auth_root}session:{session_id}"

    def revoked(self, token_id: str) -> str:
        return f"{self.auth_root}revoked:{token_id}"

    # --- operations ----------------------------------------------------------------------
    def stats(self) -> str:
        return f"{self.prefix}:stats"


def digest(value) -> str:
    """A short stable hash of a JSON-able value (normalized filter sets, for instance)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
