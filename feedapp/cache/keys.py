"""The one key scheme. Every Redis key and every L1 key of feedapp is built here.

Layout: `<prefix>:<area>:<family>:{<id>}[:<more>]`, prefix `feedapp:v1` by default (change the
version to move a deployment to fresh keys after a representation change). Cache entries live
under the `cache` area and auth state under `auth`, so no cache operation can reach auth keys.
The `{...}` part is a Redis Cluster hash tag: a value and its lease always share a slot.

No input can shape a key beyond its own slot: every variable part goes through `_part`, which
keeps it only when it is plainly safe (ids, usernames, token ids: letters, digits, `_`, `-`)
and otherwise replaces it by `~` and a hash, so `:`, `{`, `}`, glob characters, `../`, NUL,
unicode or a megabyte of text can never reach another family's keys or another key's slot.
Filter sets are always hashed. Operators name keys through `from_client`, which accepts cache
families only and a strict character set.
"""
import functools
import hashlib
import json
import re

CACHE_FAMILIES = ("profile", "author", "username", "post", "timeline", "feed", "explore", "meta", "page")
_SAFE_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What an operator may type: families, ids, usernames, hashed parts, braces of the hash tag.
_CLIENT_KEY = re.compile(r"[A-Za-z0-9_:{}~-]{1,300}")


class Keys:
    def __init__(self, prefix: str = "feedapp:v1"):
        self.prefix = prefix
        self.cache_root = f"{prefix}:cache:"
        self.auth_root = f"{prefix}:auth:"
        self.families = CACHE_FAMILIES
        self.channel = f"{prefix}:invalidate"
        # Acks share the channel name's slot (hash tag): on a cluster they live on the node
        # where every listener subscribes, so whatever stops the acks stops the listeners too.
        self.ack_prefix = f"{prefix}:ack:{{{self.channel}}}:"
        # The listeners writers wait for (invalidation/publisher.py), in the channel's slot too.
        self.listeners = f"{prefix}:listeners:{{{self.channel}}}"

    # --- cache entries -------------------------------------------------------------------
    def profile(self, user_id) -> str:
        return f"{self.cache_root}profile:{{{_part(user_id)}}}"

    def author(self, user_id) -> str:
        """What a post shows of its author (username, display name): apart from the profile,
        whose counters every post, follow and unfollow changes, so that pages of posts are not
        evicted by them."""
        return f"{self.cache_root}author:{{{_part(user_id)}}}"

    def username(self, username: str) -> str:
        """Case-insensitive: every spelling of one username names one key."""
        return f"{self.cache_root}username:{{{_part(str(username).lower())}}}"

    def post(self, post_id) -> str:
        return f"{self.cache_root}post:{{{_part(post_id)}}}"

    def timeline(self, user_id) -> str:
        """The newest posts of user_id (a post list)."""
        return f"{self.cache_root}timeline:{{{_part(user_id)}}}"

    def feed(self, user_id) -> str:
        """The newest posts of user_id's home feed (a post list)."""
        return f"{self.cache_root}feed:{{{_part(user_id)}}}"

    @property
    def feed_prefix(self) -> str:
        """Every cached home feed (and, in L1, every page composed from one)."""
        return f"{self.cache_root}feed:"

    def explore(self, filters: dict, generation: int) -> str:
        return f"{self.cache_root}explore:{{{int(generation)}:{digest(filters)}}}"

    def page(self, listing: str, user_id, limit: int, before) -> str:
        """A composed page of a listing ("feed" or "timeline"), kept in L1 only."""
        return f"{self.cache_root}page:{{{_part(user_id)}}}:{_part(listing)}:{int(limit)}:{_part(before or '-')}"

    def meta(self, name: str) -> str:
        """Deployment-wide counters that keys depend on (the explore generation)."""
        return f"{self.cache_root}meta:{{{_part(name)}}}"

    def family(self, key: str) -> str:
        """The key family of a cache key ("profile", "feed", ...), "auth", or "other"."""
        return _family(self.cache_root, self.auth_root, key)

    def from_client(self, text: str) -> str:
        """A key or prefix named by an operator, relative to the cache area ("profile:{<id>}",
        "feed:") or absolute. Only cache families can be named; raises ValueError otherwise."""
        relative = text[len(self.cache_root):] if text.startswith(self.cache_root) else text
        full = self.cache_root + relative
        if (
            _CLIENT_KEY.fullmatch(relative) is None
            or ":" not in relative
            or self.family(full) not in self.families
        ):
            raise ValueError(f"Not a cache key or prefix: {text[:100]!r}")
        return full

    # --- auth state ----------------------------------------------------------------------
    def session(self, user_id, session_id: str) -> str:
        """One login's session; in its user's slot, with the user's session index."""
        return f"{self.session_prefix(user_id)}{_part(session_id)}"

    def session_prefix(self, user_id) -> str:
        return f"{self.auth_root}session:{{{_part(user_id)}}}:"

    def sessions(self, user_id) -> str:
        """The user's open sessions, oldest first (a sorted set of session ids)."""
        return f"{self.auth_root}sessions:{{{_part(user_id)}}}"

    def revoked(self, token_id: str) -> str:
        return f"{self.auth_root}revoked:{_part(token_id)}"

    def login_failures(self, scope: str, subject: str) -> str:
        """Failed-login counter of one account or client address (always hashed)."""
        return self.attempts("login", scope, subject)

    def attempts(self, action: str, scope: str, subject: str) -> str:
        """Rate-limit counter of one action ("login", "register") for one account or client
        address (the subject is always hashed)."""
        return f"{self.auth_root}{_part(action)}:{_part(scope)}:{{{_hashed(subject)}}}"

    # --- operations ----------------------------------------------------------------------
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    def stats_workers(self) -> str:
        """Worker heartbeats, in the slot of stats(): stats() has no braces, so its slot is
        that of its whole name, which is this key's hash tag; one transaction updates both."""
        return f"{self.prefix}:{{{self.stats()}}}:workers"


@functools.lru_cache(maxsize=16384)  # on every L1 hit: a bounded memo beats re-parsing
def _family(cache_root: str, auth_root: str, key: str) -> str:
    if key.startswith(cache_root):
        return key[len(cache_root):].split(":", 1)[0]
    if key.startswith(auth_root):
        return "auth"
    return "other"


def _part(value) -> str:
    """A key part: the value itself when it is plainly safe, otherwise `~` and its hash."""
    text = str(value)
    return text if _SAFE_PART.fullmatch(text) else _hashed(text)


def _hashed(text: str) -> str:
    # surrogatepass: a lone surrogate from a hostile client still hashes instead of raising
    return "~" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def digest(value) -> str:
    """A short stable hash of a JSON-able value (normalized filter sets, for instance)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
