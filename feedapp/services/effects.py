"""What follows a write's truth: counter updates, evictions, and the write whose outcome is
unknown.

A write commits one document that is the truth (a follow, a like, a post), then updates what
derives from it: counters in other documents, the explore generation, the caches. Once the
truth has committed the write succeeds, whatever fails after it (API.md: a write that
committed is never answered with a 5xx): a follow-up update that fails becomes a task of the
recovery, which redoes it from the source (invalidation/recovery.py).

When the truth write itself fails with a connection error, nobody knows whether it was
applied (the reply may be what was lost). `commit` then records recounts of what it would
have changed and evicts what it touches before the error reaches the client (503), and a
retry that finds the truth already there (`verify`) recounts before it answers: so a retried
follow, like or post leaves every counter equal to its source.
"""
from pymongo.errors import ConnectionFailure, PyMongoError, WriteConcernError

from ..cache.invalidation import Bump, Eviction, Recount
from ..repository import Unfinished

# The store did not confirm the write, yet may have applied it or may still apply it: a reply
# lost on the network or to a hung server, a write concern not met in time (the primary has it).
UNCONFIRMED = (ConnectionFailure, WriteConcernError)


class Effects:
    def __init__(self, repo, writer, recovery):
        self.repo = repo
        self.writer = writer
        self.recovery = recovery

    def commit(self, write, targets, evict, evict_prefixes=()):
        """Run a truth write (a repository call) and return its result. Counters it could not
        update after its commit are recounted later.

        If the store does not confirm the write, it may have been applied, or may be applied
        later (a hung server that resumes): targets [(kind, id)] are recounted and `evict`
        (and `evict_prefixes`) evicted as soon as the store answers, and the error goes on (a
        503). Not at once: while the store is away, what the caches hold is still what it
        holds, and serving it is right (docs/design.md, rule 9); a retry that finds the
        write done evicts at once."""
        try:
            return write()
        except Unfinished as unfinished:
            for what, ident in unfinished.recounts:
                self._record(Recount(what, ident))
            return unfinished.result
        except UNCONFIRMED:
            for what, ident in targets:
                self._record(Recount(what, ident))
            self._record(Eviction(list(evict), list(evict_prefixes), after_store=True))
            raise

    def bump(self, name: str):
        """Move a deployment-wide counter on (the explore generation); later if that fails."""
        try:
            self.repo.bump_counter(name)
        except PyMongoError:
            self._record(Bump(name))

    def after_commit(self, update, fallback=None):
        """Run update() after the truth committed; if it fails, the recovery task `fallback`
        (None: nothing needs redoing, e.g. remembering an answer)."""
        try:
            return update()
        except PyMongoError:
            if fallback is not None:
                self._record(fallback)
            return None

    def verify(self, targets, evict=()) -> list:
        """A retried write found its truth already there: recount targets [(what, id) or
        (what, id, counter names)] now (what followed the first attempt may not have
        happened) and evict what changed, and `evict`. Returns the cache keys of the
        counters that changed."""
        changed = self.recovery.verify(targets)
        keys = sorted(set(changed) | set(evict))
        if keys:
            self.writer.invalidate(keys=keys)
        return changed

    def _record(self, task):
        self.recovery.record(task)
