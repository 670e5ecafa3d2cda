from datetime import datetime

from bson import ObjectId

from feedapp.cache.postlists import PostList, PostListCodec, after, newest
from feedapp.listing import cursor_of, entry_of


def entry(ms, n):
    return f"{ms:015d}{n:024x}"


def test_entry_sorts_like_the_store_and_maps_back_to_a_cursor():
    oid = ObjectId()
    when = datetime(2026, 11, 23, 10, 15, 30, 123000)
    e = entry_of(when, oid)
    assert len(e) == 39
    assert cursor_of(e).created_at == when and cursor_of(e).id == oid
    assert entry(5, 2) > entry(5, 1) > entry(4, 9)


def test_codec_round_trip():
    value = PostList((entry(3, 1), entry(2, 1)), complete=False, pull=("abc", "def"))
    assert PostListCodec.decode(PostListCodec.encode(value)) == value
    feed = PostList((entry(3, 1),), complete=True, pull=("abc",), authors=frozenset({"abc", "xyz"}))
    assert PostListCodec.decode(PostListCodec.encode(feed)) == feed
    nobody = PostList((), complete=True, authors=frozenset())
    assert PostListCodec.decode(PostListCodec.encode(nobody)) == nobody
    empty = PostList((), complete=True)
    assert PostListCodec.decode(PostListCodec.encode(empty)) == empty


def test_newest_merges_distinct_entries_down_to_the_floor_of_partial_lists():
    a = PostList((entry(9, 1), entry(5, 1), entry(3, 1)), complete=False)
    b = PostList((entry(8, 2), entry(5, 1), entry(1, 2)), complete=True)
    merged, floor = newest([a, b])
    assert floor == entry(3, 1)
    assert tuple(merged) == (entry(9, 1), entry(8, 2), entry(5, 1), entry(3, 1))  # not entry(1, 2): below the floor
    merged, floor = newest([b])
    assert floor is None and tuple(merged) == b.entries


def test_newest_starts_strictly_after_the_given_entry():
    a = PostList((entry(9, 1), entry(5, 1), entry(3, 1)), complete=True)
    b = PostList((entry(8, 2), entry(5, 1), entry(1, 2)), complete=True)
    assert tuple(newest([a, b], entry(8, 2))[0]) == (entry(5, 1), entry(3, 1), entry(1, 2))
    assert tuple(newest([a, b], entry(1, 2))[0]) == ()
    assert tuple(newest([a], entry(9, 1))[0]) == (entry(5, 1), entry(3, 1))


def test_after_finds_the_first_older_entry():
    entries = (entry(9, 1), entry(5, 2), entry(5, 1), entry(3, 1))
    assert after(entries, None) == 0
    assert after(entries, entry(5, 2)) == 2
    assert after(entries, entry(6, 0)) == 1
    assert after(entries, entry(1, 0)) == 4
