"""How a new post reaches the cached home feeds of its author's followers.

An author with fewer than FANOUT_LIMIT followers is in *push* mode: a new post is written
through to each follower's cached feed (one Lua insert per feed, in batches). Above the limit
an author moves, once and for good, to *pull* mode: a post updates only the author's own
timeline, and readers merge the timelines of the pull authors they follow into their feed at
read time. Merging was chosen over invalidating because invalidating N feeds is as unbounded a
write as updating them, and every follower would then pay a full rebuild from MongoDB; merging
costs a reader one L1 lookup per followed pull author (few users follow many of them).

Each cached feed records the pull authors it merges (read from the store when it is built).
The move to pull goes through a middle state so that no post falls between the two models:
1. mode "both": the author's posts are still pushed, and feeds built from now on merge them;
2. the cached feeds of the author's followers (about FANOUT_LIMIT of them, once) are
   invalidated everywhere, so every feed read from then on was built after step 1;
3. mode "pull": pushing stops.
"""


class Fanout:
    def __init__(self, repo, cache, keys, limit: int):
        self.repo = repo
        self.cache = cache
        self.keys = keys
        self.limit = limit

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
            return self.repo.fanout_state(author_id)[0]  # another request is moving it
        self.cache.invalidate(keys=self.follower_feeds(author_id))
        self.repo.set_fanout(author_id, "pull", ("both",))
        return "pull"

    def follower_feeds(self, author_id) -> list:
        return [self.keys.feed(f) for f in self.repo.follower_ids(author_id)]

    def push(self, author_id, mode: str, entry: str, cap: int, also_invalidate=()):
        """Write a new post's entry through to its author's timeline and, unless the author is
        in pull mode, to its followers' cached feeds."""
        feeds = [] if mode == "pull" else self.follower_feeds(author_id)
        self.cache.write_through([self.keys.timeline(author_id)] + feeds, entry, cap, also_invalidate)
        if feeds:
            # A follower who unfollowed meanwhile may have had the entry pushed into a feed
            # rebuilt after the unfollow: invalidate the feeds of those no longer following.
            gone = set(feeds) - set(self.follower_feeds(author_id))
            if gone:
                self.cache.invalidate(keys=sorted(gone))
