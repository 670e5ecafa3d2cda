"""How a new post reaches the cached home feeds of its author's followers.

An author with fewer than FANOUT_LIMIT followers is in *push* mode: a new post is written
through to each follower's cached feed (one Lua insert per feed, in batches). Above the limit
an author moves, once and for good, to *pull* mode: a post updates only the author's own
timeline, and readers merge the timelines of the pull authors they follow into their feed at
read time. Merging was chosen over invalidating because invalidating N feeds is as unbounded a
write as updating them, and every follower would then pay a full rebuild from MongoDB; merging
costs a reader one L1 lookup per followed pull author (few users follow many of them).

Each cached feed records the pull authors it merges, and its key carries the deployment-wide
fan-out *epoch*. Moving an author to pull goes through a middle state so that no post can
fall between the two models:
1. mode "both": the author's posts are pushed AND feeds built from now on merge the author;
2. the epoch is bumped and its cache entry invalidated on every worker (acknowledged), so every
   feed read from then on uses a feed built after step 1;
3. mode "pull": pushing stops.
"""
EPOCH = "fanout_epoch"


class Fanout:
    def __init__(self, repo, cache, keys, limit: int):
        self.repo = repo
        self.cache = cache
        self.keys = keys
        self.limit = limit

    def epoch(self) -> int:
        """The current fan-out epoch (part of every feed key)."""
        return self.cache.get_or_load(self.keys.meta(EPOCH), lambda: self.repo.counter(EPOCH))

    def mode(self, author_id) -> str:
        """The author's fan-out mode, moving it to pull when it has outgrown push."""
        state = self.repo.fanout_state(author_id)
        if state is None:
            return "push"
        mode, followers = state
        if mode == "push" and followers >= self.limit:
            return self._move_to_pull(author_id)
        return mode

    def _move_to_pull(self, author_id) -> str:
        if not self.repo.set_fanout(author_id, "both", ("push",)):
            return self.repo.fanout_state(author_id)[0]  # someone else is moving it
        self.repo.bump_counter(EPOCH)
        self.cache.invalidate(keys=[self.keys.meta(EPOCH)])
        self.repo.set_fanout(author_id, "pull", ("both",))
        return "pull"

    def feed_keys(self, author_id, mode: str) -> list:
        """The cached feed keys a new post of author_id must be written through to."""
        if mode == "pull":
            return []
        epoch = self.repo.counter(EPOCH)  # the store, not a cache: a bump may be in flight
        return [self.keys.feed(f, epoch) for f in self.repo.follower_ids(author_id)]
