"""What the collections' queries share: the store's clock, the outcomes of a write, paging and
upserting."""
from datetime import datetime, timezone

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

UPSERT_ATTEMPTS = 3  # after a lost race the document exists, so the next attempt updates it


class Unfinished(Exception):
    """A write committed, but counters derived from it could not be updated: `result` is what
    the write returns, `recounts` the (kind, id) whose counters must be recounted."""

    def __init__(self, result, recounts, cause):
        super().__init__(f"committed, but the counters of {recounts} were not updated: {cause!r}")
        self.result = result
        self.recounts = recounts


class DuplicateError(Exception):
    """A unique field is taken; `field` names it."""

    def __init__(self, field):
        super().__init__(f"{field} already taken")
        self.field = field


def utcnow() -> datetime:
    """Now, as the store keeps it: naive UTC, millisecond precision."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def page(collection, query, sort, limit) -> list:
    """Up to `limit` documents matching `query`, in `sort` order."""
    return list(collection.find(query).sort(sort).limit(limit))


def upsert(collection, query, update, attempts=UPSERT_ATTEMPTS):
    """find_one_and_update(upsert=True): the document after the update, also when concurrent
    upserts race to create it. MongoDB may refuse the loser with DuplicateKeyError (nothing
    was written: try again, it now matches); SecantusDB sometimes applies an upsert yet
    answers None (read it back: applying it again would count it twice)."""
    for attempt in range(attempts):
        try:
            doc = collection.find_one_and_update(query, update, upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            if attempt == attempts - 1:
                raise
            continue
        return doc if doc is not None else collection.find_one(query)
