"""Cached post lists (timelines, home feeds): the newest post ids of a listing, in order, as
post-list entries (see feedapp.listing). A list is complete ("C") when it holds the whole
listing, partial ("P") when it holds only its newest part.
"""
import heapq
import itertools
from dataclasses import dataclass

from ..listing import ENTRY_WIDTH, entry_of


@dataclass(frozen=True)
class PostList:
    entries: tuple  # newest first
    complete: bool
    # A home feed's: the pull authors it merges at read time, and every author it is for
    # (whom its user followed when it was built); None: not a feed (a timeline).
    pull: tuple = ()
    authors: frozenset | None = None

    @classmethod
    def from_docs(cls, docs, cap: int, pull=(), authors=None) -> "PostList":
        """From up to cap + 1 post documents, newest first (the extra one says "more")."""
        entries = tuple(entry_of(d["created_at"], d["_id"]) for d in docs[:cap])
        authors = None if authors is None else frozenset(str(a) for a in authors)
        return cls(entries, complete=len(docs) <= cap, pull=tuple(str(a) for a in pull), authors=authors)


class PostListCodec:
    """`<pull ids>[;<author ids>]\n<C|P><entries>`: ids comma-separated; the first line is
    left alone by the Lua write-through."""

    @staticmethod
    def encode(value: PostList) -> bytes:
        header = ",".join(value.pull)
        if value.authors is not None:
            header += ";" + ",".join(sorted(value.authors))
        return f"{header}\n{'C' if value.complete else 'P'}{''.join(value.entries)}".encode()

    @staticmethod
    def decode(raw: bytes) -> PostList:
        text = raw.decode()
        header, _, body = text.partition("\n")
        pull, has_authors, authors = header.partition(";")
        blob = body[1:]
        entries = tuple(blob[i:i + ENTRY_WIDTH] for i in range(0, len(blob), ENTRY_WIDTH))
        return PostList(entries, complete=body[:1] == "C", pull=tuple(a for a in pull.split(",") if a),
                        authors=frozenset(a for a in authors.split(",") if a) if has_authors else None)


def newest(lists, before_entry: str | None = None) -> tuple:
    """(entries, floor): the distinct entries of `lists` strictly older than before_entry,
    newest first, as a lazy iterator that stops at the floor; and that floor.

    Entries older than the floor may be missing: a partial list says nothing about what lies
    beyond its last entry. The floor is None when every list is complete. Lazy because a page
    takes its first `limit` entries of a merge of up to hundreds of lists of LIST_CAP entries:
    sorting them all would cost a feed page more than everything else it does.
    """
    lists = list(lists)
    # A partial list is never empty: it is the first `cap` entries of a longer listing.
    tails = [pl.entries[-1] for pl in lists if not pl.complete]
    floor = max(tails) if tails else None
    parts = [pl.entries[after(pl.entries, before_entry):] for pl in lists]
    merged = parts[0] if len(parts) == 1 else _distinct(heapq.merge(*parts, reverse=True))
    if floor is None:
        return iter(merged), None
    return itertools.takewhile(floor.__le__, merged), floor


def _distinct(entries):
    """Drops repeats from a sorted iterable (the same post pushed to a feed and in a timeline)."""
    previous = None
    for entry in entries:
        if entry != previous:
            yield entry
            previous = entry


def after(entries: tuple, before_entry: str | None) -> int:
    """Index of the first entry strictly older than before_entry (0 when there is none)."""
    if before_entry is None:
        return 0
    low, high = 0, len(entries)
    while low < high:  # entries are descending
        mid = (low + high) // 2
        if entries[mid] >= before_entry:
            low = mid + 1
        else:
            high = mid
    return low
