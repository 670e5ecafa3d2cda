"""The unfinished work a write can leave behind, as the recovery keeps and finishes it
(recovery.py), and as the outbox stores it (`entry()`, read back by `task_of`):
- `Eviction(keys, prefixes)`: delete in L2 and publish to every L1 (`after_store`: once the
  store answers again, for a write it did not confirm);
- `Recount(what, id)`: set a user's or post's counters from their source, then evict them;
- `Bump(name)`: move a deployment-wide counter on (the explore generation), then evict it.
Every task can be done twice without harm. `finish(recovery)` does it (True once done) with
the recovery's store, keys and delivery; `blocks_trust`: while it is left, no worker may trust
its caches; `needs_store`: it can be done only while the store answers.
"""
from dataclasses import dataclass, field


@dataclass
class Eviction:
    keys: list
    prefixes: list = field(default_factory=list)
    outbox_id: object = None
    # after_store: evict again once the store answers (a write it did not confirm may land
    # late, after readers refilled the caches); evicted already, so trust is not revoked.
    after_store: bool = False

    @property
    def blocks_trust(self) -> bool:
        return not self.after_store

    @property
    def needs_store(self) -> bool:
        return self.after_store

    def entry(self):
        return {"kind": "evict", "keys": self.keys, "prefixes": self.prefixes, "after_store": self.after_store}

    def finish(self, recovery) -> bool:
        if self.after_store:
            recovery.repo.ping()  # raises while the store is still away: tried again next run
        recovery.deliver(self.keys, self.prefixes)
        return True


@dataclass
class Recount:
    what: str  # "user" | "post"
    id: object
    outbox_id: object = None
    blocks_trust = False
    needs_store = True

    def entry(self):
        return {"kind": "recount", "what": self.what, "id": self.id}

    def finish(self, recovery) -> bool:
        settled, _ = recovery.recount(self.what, self.id)
        if settled:
            recovery.deliver([recovery.cache_key(self.what, self.id)], [])
        return settled


@dataclass
class Bump:
    name: str
    outbox_id: object = None
    blocks_trust = False
    needs_store = True

    def entry(self):
        return {"kind": "bump", "name": self.name}

    def finish(self, recovery) -> bool:
        recovery.repo.bump_counter(self.name)
        recovery.deliver([recovery.keys.meta(self.name)], [])
        return True


def task_of(entry: dict):
    """The task an outbox entry records (None for an entry this version does not know)."""
    kind = entry.get("kind")
    if kind == "evict":
        return Eviction(list(entry.get("keys", [])), list(entry.get("prefixes", [])), entry["_id"],
                        bool(entry.get("after_store")))
    if kind == "recount":
        return Recount(entry["what"], entry["id"], entry["_id"])
    if kind == "bump":
        return Bump(entry["name"], entry["_id"])
    return None
