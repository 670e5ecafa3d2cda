"""GET /api/posts?q=&author=&sort=&page=&page_size= (explore)."""
from urllib.parse import urlencode

import pytest

from .helpers import TIERS, UNKNOWN_ID, assert_post, assert_validation_error, create_post


def explore(client, query=""):
    response = client.get(f"/api/posts{query}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"items", "page", "page_size", "total"}, sorted(body)
    for item in body["items"]:
        assert_post(item)
    return body


def ids(body):
    return [item["id"] for item in body["items"]]


def test_explore_defaults_to_recent_page_1_size_20(client, alice, bob):
    first, second = create_post(client, alice, "a"), create_post(client, bob, "b")
    body = explore(client)
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, 2)
    assert ids(body) == [second["id"], first["id"]]


def test_explore_items_are_full_posts(client, alice):
    post = create_post(client, alice)
    assert explore(client)["items"] == [post]


def test_explore_of_an_empty_store(client):
    assert client.get("/api/posts").get_json() == {"items": [], "page": 1, "page_size": 20, "total": 0}


def test_explore_q_is_a_case_insensitive_substring(client, alice):
    hit1 = create_post(client, alice, "I love Redis caches")
    hit2 = create_post(client, alice, "REDIS!")
    create_post(client, alice, "mongo only")
    body = explore(client, "?q=redis")
    assert ids(body) == [hit2["id"], hit1["id"]] and body["total"] == 2


@pytest.mark.parametrize("q", [".*", "(", "[a-z]+", "^", "\\", "$ne", "a|b", "%"])
def test_explore_q_matches_literally_never_as_a_pattern(client, alice, q):
    create_post(client, alice, "plain text")
    literal = create_post(client, alice, f"has {q} inside")
    body = explore(client, "?" + urlencode({"q": q}))
    assert ids(body) == [literal["id"]]


def test_explore_q_of_100_characters_is_accepted(client):
    assert explore(client, "?q=" + "x" * 100)["total"] == 0


def test_explore_author_filter(client, alice, bob):
    mine = create_post(client, alice, "mine")
    create_post(client, bob, "theirs")
    body = explore(client, f"?author={alice.id}")
    assert ids(body) == [mine["id"]] and body["total"] == 1


def test_explore_unknown_author_is_an_empty_listing(client, alice):
    create_post(client, alice)
    body = explore(client, f"?author={UNKNOWN_ID}")
    assert body["items"] == [] and body["total"] == 0


def test_explore_q_and_author_combine(client, alice, bob):
    hit = create_post(client, alice, "cats")
    create_post(client, alice, "dogs")
    create_post(client, bob, "cats")
    assert ids(explore(client, f"?q=cat&author={alice.id}")) == [hit["id"]]


def test_explore_popular_orders_by_likes_then_newest(client, alice, bob, carol):
    old_one, new_one, two, zero = (create_post(client, alice, c) for c in ("old1", "new1", "two", "zero"))
    for user, post in ((bob, old_one), (bob, new_one), (bob, two), (carol, two)):
        client.post(f"/api/posts/{post['id']}/like", headers=user.headers)
    body = explore(client, "?sort=popular")
    assert ids(body) == [two["id"], new_one["id"], old_one["id"], zero["id"]]
    assert [item["likes_count"] for item in body["items"]] == [2, 1, 1, 0]


def test_explore_recent_orders_newest_first(client, alice):
    posts = [create_post(client, alice, f"n{i}") for i in range(4)]
    client.post(f"/api/posts/{posts[0]['id']}/like", headers=alice.headers)
    assert ids(explore(client, "?sort=recent")) == [p["id"] for p in reversed(posts)]


def test_explore_pages_slice_the_listing_and_report_total(client, alice):
    posts = [create_post(client, alice, f"n{i}") for i in range(5)]
    newest = [p["id"] for p in reversed(posts)]
    pages = [explore(client, f"?page={n}&page_size=2") for n in (1, 2, 3, 4)]
    assert [ids(p) for p in pages] == [newest[0:2], newest[2:4], newest[4:5], []]
    assert all((p["total"], p["page_size"]) == (5, 2) for p in pages)
    assert [p["page"] for p in pages] == [1, 2, 3, 4]


def test_explore_page_far_beyond_the_end_is_empty(client, alice):
    create_post(client, alice)
    body = explore(client, "?page=1000000&page_size=100")
    assert body["items"] == [] and body["total"] == 1


def test_explore_page_size_bounds_are_accepted(client):
    assert explore(client, "?page_size=1")["page_size"] == 1
    assert explore(client, "?page_size=100")["page_size"] == 100


@pytest.mark.parametrize(
    "query, field",
    [
        ("q=" + "x" * 101, "q"),
        ("author=not-an-id", "author"),
        ("author=" + "z" * 24, "author"),
        ("author=", "author"),
        ("author=%7B%22%24ne%22%3Anull%7D", "author"),
        ("sort=bogus", "sort"),
        ("sort=", "sort"),
        ("sort=RECENT", "sort"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("page=1e9", "page"),
        ("page=" + "1" + "0" * 30, "page"),
        ("page=" + "9" * 5000, "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=1000", "page_size"),
        ("page_size=-5", "page_size"),
        ("page_size=abc", "page_size"),
    ],
)
def test_explore_rejects_bad_query_values(client, query, field):
    assert_validation_error(client.get(f"/api/posts?{query}"), field)


def test_explore_reports_every_bad_value_at_once(client):
    error = assert_validation_error(client.get("/api/posts?page=0&page_size=0&sort=x"), "page", "page_size", "sort")
    assert set(error["details"]) == {"page", "page_size", "sort"}


def test_explore_ignores_unknown_query_parameters(client, alice):
    post = create_post(client, alice)
    assert ids(explore(client, "?utm_source=x&_=1&%24where=1")) == [post["id"]]


def test_explore_ignores_operator_shaped_parameter_names(client, alice, bob):
    create_post(client, alice)
    create_post(client, bob)
    assert explore(client, f"?author[$ne]={alice.id}")["total"] == 2


def test_explore_carries_x_cache_and_etag(client):
    response = client.get("/api/posts")
    assert response.headers["X-Cache"] in TIERS and response.headers.get("ETag")


def test_explore_first_read_comes_from_l3(client, alice):
    create_post(client, alice, "unique words here")
    assert client.get("/api/posts?q=unique").headers["X-Cache"] == "L3"


def test_explore_matching_if_none_match_is_304_without_body(client, alice):
    create_post(client, alice)
    etag = client.get("/api/posts").headers["ETag"]
    response = client.get("/api/posts", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.get_data() == b""



def test_nul_in_q_is_a_validation_error(client):
    # MongoDB rejects a regex containing NUL; it must be a 400, never a 500.
    response = client.get("/api/posts?q=a%00b")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"
    assert "q" in response.get_json()["error"]["details"]


@pytest.mark.parametrize("order", [("İ", "i̇"), ("i̇", "İ")])
def test_explore_strings_that_lower_case_alike_get_their_own_pages(client, alice, worker, order):
    # "İ".lower() == "i̇": a key made from the lower-cased filter would serve one to the other.
    for content in ("plain i", "dotted i̇", "Kİ"):
        create_post(client, alice, content)
    truth = {q: [str(doc["_id"]) for doc in worker.repo.explore(q=q)[0]] for q in order}
    assert truth[order[0]] != truth[order[1]]
    for q in order:
        assert ids(explore(client, "?" + urlencode({"q": q}))) == truth[q], q
    for q in order:  # again, now that both pages are cached
        assert ids(explore(client, "?" + urlencode({"q": q}))) == truth[q], q
