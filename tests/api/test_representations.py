"""A cached value's answer (body, ETag, compressed variants) is made once and never outlives
the value: a write makes a new value, and the next answer is made from it."""
import pytest

from feedapp.http import compression
from feedapp.http.representations import Representation, Representations

from .helpers import create_post


@pytest.fixture
def encodes(app, monkeypatch):
    """The number of JSON bodies encoded so far, by any answer."""
    made = []
    real = app.json.encode_body
    monkeypatch.setattr(app.json, "encode_body", lambda obj: made.append(obj) or real(obj))
    return made


@pytest.fixture
def compressions(monkeypatch):
    made = []
    real = compression.ENCODERS["br"]
    monkeypatch.setitem(compression.ENCODERS, "br", lambda data: made.append(len(data)) or real(data))
    return made


def served_from_l1(client, worker, path, headers=None) -> bool:
    """Once this worker trusts its L1: read path (filling L1), then read it from L1."""
    assert worker.listener.wait_live(5)
    client.get(path, headers=headers)
    return client.get(path, headers=headers).headers["X-Cache"] == "L1"


def test_an_l1_value_is_encoded_once_and_a_write_makes_a_new_answer(client, worker, alice, encodes):
    path = f"/api/users/{alice.id}"
    first = client.get(path)
    assert served_from_l1(client, worker, path)
    encoded = len(encodes)
    answers = [client.get(path) for _ in range(5)]
    assert [a.headers["X-Cache"] for a in answers] == ["L1"] * 5
    assert len(encodes) == encoded  # no answer from L1 encoded its body again
    assert {a.data for a in answers} == {first.data} and {a.headers["ETag"] for a in answers} == {first.headers["ETag"]}

    client.patch("/api/me", json={"bio": "changed"}, headers=alice.headers)
    after = client.get(path)
    assert after.get_json()["bio"] == "changed"
    assert after.headers["ETag"] != first.headers["ETag"]
    assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


def test_a_cached_page_is_compressed_once_per_coding(client, worker, alice, bob, compressions):
    client.post(f"/api/users/{alice.id}/follow", headers=bob.headers)
    for n in range(40):
        create_post(client, alice, f"post {n}, long enough that a page of them is worth compressing")
    path, br = f"/api/users/{bob.id}/feed?limit=40", {"Accept-Encoding": "br"}
    assert served_from_l1(client, worker, path, br)
    made = len(compressions)
    answers = [client.get(path, headers=br) for _ in range(5)]
    assert {a.headers["Content-Encoding"] for a in answers} == {"br"}
    assert len(compressions) == made
    assert len({a.data for a in answers}) == 1


def test_an_answer_is_found_by_its_value_itself_never_by_an_equal_one():
    kept = Representations()
    value = {"id": "1", "bio": "old"}
    made = kept.of(value, lambda v: b"body")
    assert kept.of(value, lambda v: pytest.fail("encoded twice")) is made
    assert kept.find({"id": "1", "bio": "old"}) is None  # equal, but another object
    assert kept.find(dict(value)) is None


def test_answers_are_bounded_in_bytes_least_recently_used_first_out():
    kept = Representations(max_bytes=4 * 100)  # two answers of 100 bytes (body + variant)
    values = [{"n": n} for n in range(3)]
    for value in values[:2]:
        kept.of(value, lambda v: b"x" * 100)
    kept.find(values[0])  # used: the other goes first
    kept.of(values[2], lambda v: b"y" * 100)
    assert kept.find(values[0]) is not None and kept.find(values[2]) is not None
    assert kept.find(values[1]) is None
    assert len(kept) == 2
    huge = kept.of({"big": True}, lambda v: b"z" * 1000)  # larger than the budget: made, not kept
    assert isinstance(huge, Representation) and len(kept) == 2


def test_an_answer_composed_anew_for_each_request_is_not_kept(app, client, worker, alice):
    """A post is composed with its author for each request: keeping its answers would fill the
    budget with objects nobody asks for again."""
    post_id = create_post(client, alice, "composed per request")["id"]
    path = f"/api/posts/{post_id}"
    assert served_from_l1(client, worker, path)
    kept = app.extensions["representations"]
    before = len(kept)
    assert all(client.get(path).headers["X-Cache"] == "L1" for _ in range(5))
    assert len(kept) == before
