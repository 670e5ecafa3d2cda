"""The one key scheme. Every Redis key and every L1 key of feedapp is built here.

Layout: `<prefix>:<area>:<family>:{<id>}[:<more>]`, prefix `feedapp:v1` by default (change the
version to move a deployment to fresh keys after a representation change). Cache entries live
under the `cache` area and auth state under `auth`, so no cache operation can reach auth keys.
The `{...}` part is a Redis Cluster hash tag: a value and its lease always share a slot.
Every part that comes from a client is validated (ids) or normalized and hashed (filters)
before it gets here.
"""
import functools
import hashlib
import json

CACHE_FAMILIES = ("profile", "username", "post", "timeline", "feed", "explore", "meta")


class Keys:
    def __init__(self, prefix: str = "feedapp:v1"):
        self.prefix = prefix
        self.cache_root = f"{prefix}:cache:"
        self.auth_root = f"{prefix}:auth:"
        self.families = CACHE_FAMILIES
        self.channel = f"{prefix}:invalidate"
        self.ack_prefix = f"{prefix}:ack:"

    # --- cache entries -------------------------------------------------------------------
    def profile(self, user_id) -> str:
        return f"{self.cache_root}profile:{{{user_id}}}"

    def username(self, username: str) -> str:
        return f"{self.cache_root}username:{{{username.lower()}}}"

    def post(self, post_id) -> str:
        return f"{self.cache_root}post:{{{post_id}}}"

    def timeline(self, user_id) -> str:
        """The newest posts of user_id (a post list)."""
        return f"{self.cache_root}timeline:{{{user_id}}}"

    def feed(self, user_id) -> str:
        """The newest posts of user_id's home feed (a post list)."""
        return f"{self.cache_root}feed:{{{user_id}}}"

    def explore(self, filters: dict, generation: int) -> str:
        return f"{self.cache_root}explore:{{{generation}:{digest(filters)}}}"

    def meta(self, name: str) -> str:
        """Deployment-wide counters that keys depend on (the explore generation)."""
        return f"{self.cache_root}meta:{{{name}}}"

    def family(self, key: str) -> str:
        """The key family of a cache key ("profile", "feed", ...), "auth", or "other"."""
        return _family(self.cache_root, self.auth_root, key)

    def from_client(self, text: str) -> str:
        """A key or prefix named by an operator, relative to the cache area ("profile:{<id>}",
        "feed:") or absolute. Only cache families can be named; raises ValueError otherwise."""
        relative = text[len(self.cache_root):] if text.startswith(self.cache_root) else text
        full = self.cache_root + relative
        if self.family(full) not in self.families or ":" not in relative or "*" in relative:
            raise ValueError(f"Not a cache key or prefix: {text!r}")
        return full

    # --- auth state ----------------------------------------------------------------------
    def session(self, session_id: str) -> str:
        return f"{self.auth_root}session:{session_id}"

    def revoked(self, token_id: str) -> str:
        return f"{self.auth_root}revoked:{token_id}"

    # --- operations ----------------------------------------------------------------------
    def stats(self) -> str:
        return f"{self.prefix}:stats"


@functools.lru_cache(maxsize=16384)  # on every L1 hit: a bounded memo beats re-parsing
def _family(cache_root: str, auth_root: str, key: str) -> str:
    if key.startswith(cache_root):
        return key[len(cache_root):].split(":", 1)[0]
    if key.startswith(auth_root):
        return "auth"
    return "other"


def digest(value) -> str:
    """A short stable hash of a JSON-able value (normalized filter sets, for instance)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
