"""The one place where a write's unfinished work waits and is finished: `Recovery`.

A write commits its truth (a post, a follow, a like) first; what follows it may fail: the
evictions (Redis unreachable from this worker), the counter updates that follow the truth and
the explore generation (the store went away after the commit). Such work becomes a task
(tasks.py: `Eviction`, `Recount`, `Bump`), which can be done twice without harm. A task is
kept in this worker's memory and, when the store takes it, in the outbox (any worker finishes
it, also if this one dies). It is dropped only once it is finished: an eviction once it has
reached L2 and every L1 (the publish returned), so nothing is marked done before it is
applied everywhere.

`run()` (the recovery thread, every quarter recovery lease) finishes what it can and renews the
worker's trust (trust.py) when no eviction is left anywhere: an eviction this worker could
not deliver revokes its trust at once, and one in the outbox keeps every worker from trusting
its caches until some worker has delivered it. When the store cannot be read, the outbox is
taken to be as it was at the last successful read (serving from the caches while MongoDB is
down: docs/design.md, rule 9; a write cannot commit meanwhile).
"""
import logging
import queue
import threading
import time

import pymongo
from pymongo.errors import PyMongoError

from ...infra.redis_access import REDIS_ERRORS
from ..breaker import describe
from ..remote import L2Unavailable
from .tasks import Recount, task_of

log = logging.getLogger(__name__)

RECOUNT_PASSES = 5  # a recount is verified by a pass that finds nothing to change
# A write between its insert and its $inc looks, for that moment, like a miscount: a recount
# corrects only a difference it reads again this much later.
IN_FLIGHT_SECONDS = 0.05
OUTBOX_BATCH = 100
UNREADABLE = object()  # what a store call that failed or did not answer in time gives


class Recovery:
    def __init__(self, repo, keys, outbox, trust, stats):
        self.repo = repo
        self.keys = keys
        self._outbox = outbox
        self._trust = trust
        self._stats = stats
        self.deliver = None  # set by the wiring: Writer.deliver (evict in L2 and every L1)
        self._tasks = []  # this worker's unfinished tasks, oldest first
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._outbox_clear = True  # the last successful read found no eviction left
        self._outbox_reader = BoundedCall()

    # --- recording -------------------------------------------------------------------------------

    def record(self, task) -> float | None:
        """Keep an unfinished task. An eviction revokes this worker's trust at once. Returns
        when the outbox took it (None when the store refused it too)."""
        if task.blocks_trust:
            self._trust.revoke()
        try:
            task.outbox_id = self._outbox.add(task.entry()) if self._outbox is not None else None
            recorded_at = self._trust.clock() if task.outbox_id is not None else None
        except PyMongoError as err:
            log.warning("could not record %s in the outbox (%s); this worker keeps it", task, describe(err))
            recorded_at = None
        with self._lock:
            self._tasks.append(task)
        self._stats.count(f"recovery.recorded.{task.entry()['kind']}")
        return recorded_at

    def pending(self) -> list:
        with self._lock:
            return list(self._tasks)

    def close(self):
        """Stop the thread that reads the outbox (the recovery thread's last act)."""
        self._outbox_reader.close()

    # --- finishing -------------------------------------------------------------------------------

    def run(self):
        """Finish what can be finished; renew the trust when no eviction is left anywhere.

        The outbox is read first, on a thread of its own for at most a quarter of a recovery
        lease: a hung MongoDB (a paused server, a half-open connection, pymongo's connection
        handshake ignores its client-side timeout) then reads as "cannot be read", which keeps
        the trust of the last reading, instead of stalling the renewal until its timeouts run
        out and turning every cached read into a failed store read (docs/design.md, rule 9).
        Tasks that need the store wait for a reading that worked."""
        with self._run_lock:
            check = self._trust.check_begins()
            entries = self._outbox_reader(self._read_outbox, self._trust.recovery_lease / 4)
            readable = entries is not UNREADABLE
            with pymongo.timeout(self._trust.recovery_lease / 2):
                own_left = self._finish_own(readable)
                if readable:
                    self._outbox_clear = not self._finish_outbox(entries)
            if not own_left and self._outbox_clear:
                self._trust.recovery_renewed(check)

    def _read_outbox(self, batch: int = OUTBOX_BATCH) -> list:
        return self._outbox.pending(batch) if self._outbox is not None else []

    def _finish_own(self, store_readable: bool) -> bool:
        """Finish this worker's tasks, oldest first (those that need the store only when it
        answered); True if an eviction is left."""
        for task in self.pending():
            if (store_readable or not task.needs_store) and self._finish(task):
                with self._lock:
                    self._tasks.remove(task)
                if store_readable:
                    self._forget(task)
        return any(task.blocks_trust for task in self.pending())

    def _finish_outbox(self, entries) -> bool:
        """Finish the outbox's tasks (every worker's); True if an eviction is left there."""
        mine = {task.outbox_id for task in self.pending()}
        left = False
        for entry in entries:
            task = task_of(entry)
            if task is None or entry["_id"] in mine:
                continue
            if self._finish(task):
                self._forget(task)
            else:
                left = left or task.blocks_trust
        return left or len(entries) >= OUTBOX_BATCH

    def _finish(self, task) -> bool:
        try:
            finished = task.finish(self)
        except (PyMongoError, L2Unavailable, *REDIS_ERRORS) as err:
            log.info("could not finish %s yet: %s", task, describe(err))
            return False
        if finished:
            self._stats.count(f"recovery.finished.{task.entry()['kind']}")
        return finished

    def _forget(self, task):
        if task.outbox_id is None or self._outbox is None:
            return
        try:
            self._outbox.done([task.outbox_id])
        except PyMongoError:
            pass  # finished; it is finished again (harmlessly) next time

    # --- counters --------------------------------------------------------------------------------

    def cache_key(self, what, ident) -> str:
        return self.keys.profile(ident) if what == "user" else self.keys.post(ident)

    def recount(self, what, ident, names=None) -> tuple:
        """Set the counters of a user or post (those in `names`, default all) from their
        source: (settled, changed).

        A recount cannot be atomic with other writers' `$inc`s (no multi-document
        transactions): it sets them only if they still hold what it read (compare-and-set), only
        a difference that lasts IN_FLIGHT_SECONDS is corrected (not a write between its insert
        and its `$inc`), and only a pass that changes nothing proves them right. A deleted
        post's likes go."""
        changed = False
        for _ in range(RECOUNT_PASSES):
            stored, counted = self.repo.counters(what, ident, names)
            if stored is None:
                if what == "post":
                    self.repo.delete_likes_of(ident)
                return True, changed
            if stored == counted:
                return True, changed
            time.sleep(IN_FLIGHT_SECONDS)
            if self.repo.counters(what, ident, names) != (stored, counted):
                continue  # it moved: a write was in flight
            self.repo.set_counters_if(what, ident, stored, counted)
            changed = True
        return False, changed

    def verify(self, targets) -> list:
        """Recount targets [(what, id)] or [(what, id, counter names)] now: a retried write
        found its truth already there, so what followed it the first time may not have
        happened (the counters it names are all it changes). Returns the cache keys of those
        that changed; one that will not settle is left to `run`. Raises the store's error."""
        changed = []
        for what, ident, *names in targets:
            settled, was_changed = self.recount(what, ident, *names)
            if was_changed:
                changed.append(self.cache_key(what, ident))
            if not settled:
                self.record(Recount(what, ident))
        return changed


class BoundedCall:
    """Runs calls on a daemon thread of its own and waits for each at most `timeout`: the
    result, or UNREADABLE if it raised the store's error or is still running (it goes on,
    and until it returns the next calls answer UNREADABLE at once). One long-lived thread, so
    the embedded store's per-thread connection is opened once."""

    def __init__(self):
        self._requests = queue.SimpleQueue()
        self._busy = threading.Event()
        self._thread = None

    def __call__(self, call, timeout: float):
        if self._busy.is_set():
            return UNREADABLE
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="feedapp-store-call", daemon=True)
            self._thread.start()
        done, outcome = threading.Event(), {}
        self._busy.set()
        self._requests.put((call, outcome, done))
        if not done.wait(timeout):
            return UNREADABLE
        return outcome.get("value", UNREADABLE)

    def close(self):
        """End the thread (once its call in flight, if any, has returned)."""
        if self._thread is not None:
            self._requests.put(None)
            self._thread = None

    def _serve(self):
        while (request := self._requests.get()) is not None:
            call, outcome, done = request
            try:
                outcome["value"] = call()
            except PyMongoError as err:
                log.debug("store call failed: %s", describe(err))
            except Exception as err:  # noqa: BLE001 - this thread must never die
                log.warning("store call failed: %r", err)
            finally:
                self._busy.clear()
                done.set()


class RecoveryThread(threading.Thread):
    """Runs `Recovery.run` every `interval` seconds; never dies."""

    def __init__(self, recovery: Recovery, interval: float):
        super().__init__(name="feedapp-recovery", daemon=True)
        self._recovery = recovery
        self._interval = interval
        self._stopping = threading.Event()

    def run(self):
        while not self._stopping.is_set():
            try:
                self._recovery.run()
            except Exception as err:  # noqa: BLE001 - retried next tick; never dies
                log.warning("recovery failed: %r", err)
            self._stopping.wait(self._interval)
        self._recovery.close()

    def stop(self):
        self._stopping.set()
