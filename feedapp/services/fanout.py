"""How a new post reaches the cached home feeds of its author's followers.

An author with fewer than FANOUT_LIMIT followers is in *push* mode: a new post is written
through to each follower's cached feed (one Lua insert per feed, in batches). Above the limit
an author moves, once and for good, to *pull* mode: a post updates only the author's own
timeline, and readers merge the timelines of the pull authors they follow into their feed at
read time. Merging was chosen over invalidating because invalidating N feeds is as unbounded a
write as updating them, and every follower would then pay a full rebuild from MongoDB; merging
costs a reader one L1 lookup per followed pull author (few users follow many of them).

Each cached feed records the pull authors it merges and every author it is for (read from the
store when it is built), and a page shows only posts of those authors: an entry pushed into
the feed of someone who unfollowed meanwhile (the push read the followers before the unfollow)
is never shown, whatever fails.

The move to pull goes through a middle state so that no post falls between the two models:
1. mode "both": the author's posts are still pushed, and feeds built from now on merge them;
2. the cached feeds of the author's followers (about FANOUT_LIMIT of them, once) are
   invalidated everywhere, so every feed read from then on was built after step 1;
3. mode "pull": pushing stops.
A move interrupted after step 1 (the store failed) is finished by the next request that
reads the author's mode: it is the same steps 2 and 3, and doing them twice changes nothing.
"""
from pymongo.errors import PyMongoError


class Fanout:
    def __init__(self, repo, writer, keys, limit: int):
        self.repo = repo
        self.writer = writer
        self.keys = keys
        self.limit = limit

    def settle_mode(self, author_id) -> str:
        """The author's fan-out mode, moving it to pull when it has outgrown push and finishing
        a move that was interrupted."""
        state = self.repo.fanout_state(author_id)
        if state is None:
            return "push"
        mode, followers = state
        if mode == "push" and followers >= self.limit:
            if not self.repo.set_fanout(author_id, "both", ("push",)):
                return self.repo.fanout_state(author_id)[0]  # another request is moving it
            mode = "both"
        if mode == "both":
            self.writer.invalidate(keys=self.follower_feeds(author_id))
            self.repo.set_fanout(author_id, "pull", ("both",))
            return "pull"
        return mode

    def follower_feeds(self, author_id) -> list:
        return [self.keys.feed(f) for f in self.repo.follower_ids(author_id)]

    def push(self, author_id, entry: str, cap: int, evict=()):
        """Write a new post's entry through to its author's timeline and, unless the author is
        in pull mode, to its followers' cached feeds; evict `evict` too. If the store cannot
        say who follows the author, every cached feed is evicted instead: each is rebuilt
        from the store, post included."""
        timeline = [self.keys.timeline(author_id)]
        try:
            feeds = [] if self.settle_mode(author_id) == "pull" else self.follower_feeds(author_id)
        except PyMongoError:
            self.writer.write_through(timeline, entry, cap, evict)
            self.writer.invalidate(prefixes=[self.keys.feed_prefix])
            return
        self.writer.write_through(timeline + feeds, entry, cap, evict)
