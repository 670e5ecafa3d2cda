"""Finishing writes whose truth committed but whose derived work failed part-way.

`settle()` runs before each write and every two seconds (feedapp.maintenance).

A write commits one document in the store, then updates what derives from it: counters and
the explore generation in the store (see Repository.repair), and the caches (a new post's
entry written through to feeds). When the store goes away in between, the derived work is
recorded here and redone, from the source, before this worker's next write: the write itself
is not reported as failed (its truth is stored), and nothing stays half applied once the store
answers again. Each redo is idempotent (recounts; feed inserts skip an entry already there).
"""
import logging
import threading

log = logging.getLogger(__name__)


class Completions:
    def __init__(self, repo, cache, keys):
        self.repo = repo
        self.cache = cache
        self.keys = keys
        self._pending = {}  # name -> callable redoing the work
        self._lock = threading.Lock()

    def defer(self, name: str, redo):
        """Remember `redo` (idempotent) to run once the store answers again."""
        with self._lock:
            self._pending[name] = redo

    def settle(self):
        """Redo everything deferred (store repairs first); keep what fails again."""
        if self.repo.repairs:
            done = self.repo.repair()
            targets = [self._cache_key(kind, ident) for kind, ident in done]
            if targets:
                self.cache.invalidate(keys=targets)
        if not self._pending:
            return
        with self._lock:
            pending, self._pending = self._pending, {}
        items = list(pending.items())
        for i, (name, redo) in enumerate(items):
            try:
                redo()
            except Exception as err:  # noqa: BLE001 - keep it (and the rest) for the next pass
                log.warning("could not finish %s yet: %r", name, err)
                for left_name, left in items[i:]:
                    self.defer(left_name, left)
                return

    def _cache_key(self, kind, ident) -> str:
        return {"user": self.keys.profile, "post": self.keys.post, "counter": self.keys.meta}[kind](ident)
