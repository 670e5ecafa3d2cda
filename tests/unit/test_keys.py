"""The key scheme (feedapp/cache/keys.py): no input can shape a key outside its own slot."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedapp.cache.keys import Keys

keys = Keys()
HOSTILE = [
    "../", "../../auth:session:x", ":", "a:b", "{", "}", "}{", "a}:auth:{b", "*", "?", "[a-z]", "\\",
    "\x00", "a\x00b", "\n", " ", "", "x" * 100_000, "é", "İstanbul", "ß", "\ud800", "😀", "%2e%2e%2f",
    "feedapp:v1:auth:revoked:x", "profile:{0123456789abcdef01234567}",
]
# What a key built from input may look like: the family, then one hash tag of safe characters.
SAFE_TAG = r"\{[A-Za-z0-9_~-]{1,64}\}"
BUILDERS = {
    "profile": keys.profile, "author": keys.author, "username": keys.username, "post": keys.post,
    "timeline": keys.timeline, "feed": keys.feed, "meta": keys.meta,
}
settings.register_profile("keys", max_examples=300, derandomize=True, database=None)


def assert_confined(key, family):
    assert re.fullmatch(re.escape(keys.cache_root + family + ":") + SAFE_TAG, key), key
    assert keys.family(key) == family


@pytest.mark.parametrize("family", BUILDERS)
@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t)[:20])
def test_hostile_parts_stay_in_their_family_and_slot(family, text):
    assert_confined(BUILDERS[family](text), family)


@pytest.mark.parametrize("family", BUILDERS)
@settings(settings.get_profile("keys"))
@given(text=st.text())
def test_any_text_stays_in_its_family_and_slot(family, text):
    assert_confined(BUILDERS[family](text), family)


@settings(settings.get_profile("keys"))
@given(a=st.text(min_size=1), b=st.text(min_size=1))
def test_distinct_usernames_get_distinct_keys_and_cases_share_one(a, b):
    if a.lower() != b.lower():
        assert keys.username(a) != keys.username(b)
    assert keys.username(a.lower()) == keys.username(a)


def test_plain_ids_and_usernames_stay_readable():
    assert keys.profile("0123456789abcdef01234567") == "feedapp:v1:cache:profile:{0123456789abcdef01234567}"
    assert keys.username("Alice_1") == "feedapp:v1:cache:username:{alice_1}"


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t)[:20])
def test_auth_keys_from_hostile_token_ids_stay_in_auth(text):
    for key in (keys.revoked(text), keys.sessions(text), keys.login_failures("account", text),
                keys.attempts("register", "address", text)):
        assert keys.family(key) == "auth"
        assert re.fullmatch(r"feedapp:v1:auth:(sessions|revoked|login:account|register:address):\{?[A-Za-z0-9_~-]{1,64}\}?",
                            key), key
    session = keys.session(text, text)
    assert keys.family(session) == "auth"
    assert re.fullmatch(r"feedapp:v1:auth:session:\{[A-Za-z0-9_~-]{1,64}\}:[A-Za-z0-9_~-]{1,64}", session), session


def test_explore_keys_hash_the_filters():
    hostile = {"q": "}:auth:*\x00", "author": None, "sort": "recent", "page": 1, "page_size": 20}
    key = keys.explore(hostile, 3)
    assert re.fullmatch(r"feedapp:v1:cache:explore:\{3:[0-9a-f]{24}\}", key), key
    assert keys.explore({**hostile, "q": "other"}, 3) != key
    with pytest.raises((TypeError, ValueError)):
        keys.explore(hostile, "1}:x")


@settings(settings.get_profile("keys"))
@given(text=st.text(max_size=400))
def test_from_client_names_only_cache_keys(text):
    try:
        key = keys.from_client(text)
    except ValueError:
        return
    assert key.startswith(keys.cache_root) and keys.family(key) in keys.families
    assert not set(key) & set("*?[]\\\x00 \n") and len(key) <= len(keys.cache_root) + 300


REJECTED = [t for t in HOSTILE if not t.startswith("profile:")] + [
    "profile:*", "profile:?", "profile:[ab]", "profile:a b", "profile:../auth:", "profile:\x00",
    "profile:" + "0" * 300, "auth:x", "feedapp:v1:stats", "feedapp:v1:cache:", "feedapp:v1:cache:auth:",
]


@pytest.mark.parametrize("text", REJECTED, ids=lambda t: repr(t)[:20])
def test_from_client_rejects_hostile_text(text):
    with pytest.raises(ValueError):
        keys.from_client(text)


def test_from_client_accepts_a_key_as_the_scheme_writes_it():
    assert keys.from_client("profile:{0123456789abcdef01234567}") == keys.profile("0123456789abcdef01234567")
    assert keys.from_client(keys.username("Bob")) == keys.username("bob")
