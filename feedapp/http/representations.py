"""Encoded answers of cached values: body, ETag and compressed variants, made once per value.

A cached read hands its view the very object L1 holds (L1's values are never changed in
place: every thread of the worker shares them). The first answer built from such an object
keeps its encoding here, keyed by the object's identity, so every later answer from the same
object is a lookup and a write of bytes instead of a JSON encode, a SHA-1 and, for a large
page, a compression (~25 µs, ~5 µs and ~100 µs for a 20-post feed page).

An entry holds its object, so no other object can take its id while the entry lives; a value
that L1 evicts or replaces is simply never asked for again and ages out. Bounded in bytes,
least recently used first out.
"""
import hashlib
import threading
from collections import OrderedDict

MAX_BYTES = 8 * 2**20  # per worker: the hot set of answers, a quarter of L1's default budget


class Representation:
    """One value's answer: `body` (bytes), `tag` (the SHA-1 of body, the ETag), and its
    compressed variants, each made on first demand."""

    __slots__ = ("value", "body", "tag", "_variants")

    def __init__(self, value, body: bytes):
        self.value = value
        self.body = body
        self.tag = hashlib.sha1(body).hexdigest()  # noqa: S324 - a content tag, not security
        self._variants = {}

    def encoded(self, coding: str, encode) -> bytes:
        """The body encoded by `encode` (named `coding`), made once."""
        data = self._variants.get(coding)
        if data is None:
            data = self._variants[coding] = encode(self.body)
        return data

    @property
    def size(self) -> int:
        # The body and, at most, one compressed variant of no more than its size each.
        return 2 * len(self.body)


class Representations:
    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes
        self._entries = OrderedDict()  # id(value) -> Representation, least recently used first
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def of(self, value, encode) -> Representation:
        """The representation of `value`, kept; encode(value) -> bytes makes it when new."""
        found = self.find(value)
        if found is not None:
            return found
        made = Representation(value, encode(value))
        if made.size <= self.max_bytes:
            self._keep(made)
        return made

    def find(self, value):
        with self._lock:
            found = self._entries.get(id(value))
            if found is None or found.value is not value:
                return None
            self._entries.move_to_end(id(value))
            return found

    def _keep(self, made: Representation):
        with self._lock:
            old = self._entries.pop(id(made.value), None)
            if old is not None:
                self._bytes -= old.size
            self._entries[id(made.value)] = made
            self._bytes += made.size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size
