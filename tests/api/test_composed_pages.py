"""Composed feed and timeline pages kept in L1 (TieredCache.composed): a page read twice is one
L1 lookup, and a write to any of its parts (a post, an author's profile, the post list, a
followee's timeline) shows on the very next read, exactly as without the composed page."""
import pytest

from .helpers import create_post

LISTINGS = ("feed", "posts")  # /api/users/<bob>/feed (follows alice), /api/users/<alice>/posts


@pytest.fixture
def bob_follows_alice(client, alice, bob):
    assert client.post(f"/api/users/{alice.id}/follow", headers=bob.headers).status_code == 200
    return create_post(client, alice, "first words")


def page_url(listing, alice, bob):
    return f"/api/users/{bob.id}/feed" if listing == "feed" else f"/api/users/{alice.id}/posts"


def read(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    return response


def page_hits(worker):
    return worker.stats.counted()["l1.hits.page"]


@pytest.fixture
def cached(client, worker, alice, bob, bob_follows_alice):
    """(url, first post id) per listing, with the composed page in L1 (asserted)."""

    def make(listing):
        url = page_url(listing, alice, bob)
        read(client, url)
        before = page_hits(worker)
        response = read(client, url)
        assert response.headers["X-Cache"] == "L1"
        assert page_hits(worker) == before + 1  # the whole page came from one L1 entry
        return url

    return make


@pytest.mark.parametrize("listing", LISTINGS)
def test_an_author_rename_shows_in_a_cached_page_at_once(client, cached, alice, listing):
    url = cached(listing)
    response = client.patch("/api/me", json={"display_name": "Alice Renamed"}, headers=alice.headers)
    assert response.status_code == 200, response.get_json()
    assert read(client, url).get_json()["items"][0]["author"]["display_name"] == "Alice Renamed"


@pytest.mark.parametrize("listing", LISTINGS)
def test_an_authors_counters_and_bio_change_no_cached_page_of_their_posts(client, worker, cached, alice, carol,
                                                                          listing):
    url = cached(listing)
    page = read(client, url).get_json()
    assert client.post(f"/api/users/{alice.id}/follow", headers=carol.headers).status_code == 200
    assert client.post(f"/api/users/{carol.id}/follow", headers=alice.headers).status_code == 200
    assert client.patch("/api/me", json={"bio": "new bio"}, headers=alice.headers).status_code == 200
    profile = read(client, f"/api/users/{alice.id}").get_json()  # the profile itself is fresh
    assert (profile["followers_count"], profile["following_count"], profile["bio"]) == (2, 1, "new bio")
    before = page_hits(worker)
    response = read(client, url)
    assert response.get_json() == page and response.headers["X-Cache"] == "L1"
    assert page_hits(worker) == before + 1  # the page kept in L1 was not evicted by them


@pytest.mark.parametrize("listing", LISTINGS)
def test_a_like_shows_in_a_cached_page_at_once(client, cached, bob, bob_follows_alice, listing):
    url = cached(listing)
    assert client.post(f"/api/posts/{bob_follows_alice['id']}/like", headers=bob.headers).status_code == 200
    assert read(client, url).get_json()["items"][0]["likes_count"] == 1


@pytest.mark.parametrize("listing", LISTINGS)
def test_a_new_post_and_a_delete_show_in_a_cached_page_at_once(client, cached, alice, bob_follows_alice, listing):
    url = cached(listing)
    newer = create_post(client, alice, "second words")
    assert [i["id"] for i in read(client, url).get_json()["items"]] == [newer["id"], bob_follows_alice["id"]]
    assert client.delete(f"/api/posts/{newer['id']}", headers=alice.headers).status_code == 204
    assert [i["id"] for i in read(client, url).get_json()["items"]] == [bob_follows_alice["id"]]


def test_an_unfollow_empties_a_cached_feed_page_at_once(client, cached, alice, bob):
    url = cached("feed")
    assert client.delete(f"/api/users/{alice.id}/follow", headers=bob.headers).status_code == 200
    assert read(client, url).get_json()["items"] == []


def test_pages_of_other_limits_and_cursors_are_separate_entries(client, cached, alice):
    url = cached("posts")
    second = create_post(client, alice, "second words")
    assert len(read(client, url + "?limit=1").get_json()["items"]) == 1
    assert len(read(client, url).get_json()["items"]) == 2
    assert read(client, url + "?limit=1").get_json()["items"][0]["id"] == second["id"]
