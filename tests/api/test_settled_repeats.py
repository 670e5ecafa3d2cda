"""A like or follow whose first request finished every effect (its counts, the evictions on
every worker) is marked settled; a repeat of it (a double tap, a retry of an answered request)
then redoes nothing and leaves the caches as they are. A repeat of one whose first request did
not finish (its reply lost, its process gone after the commit) still recounts and evicts."""
from bson import ObjectId

from .helpers import create_post


def from_l1(client, worker, url) -> bool:
    """Read url twice (filling L1 first); whether the second came from L1."""
    assert worker.listener.wait_live(5)
    client.get(url)
    return client.get(url).headers["X-Cache"] == "L1"


def test_a_repeated_like_of_a_settled_like_redoes_nothing(client, worker, alice, bob):
    post = create_post(client, alice)
    url = f"/api/posts/{post['id']}"
    assert client.post(f"{url}/like", headers=bob.headers).get_json() == {"liked": True, "likes_count": 1}
    assert worker.repo.like_settled(ObjectId(bob.id), ObjectId(post["id"]))
    assert from_l1(client, worker, url)
    for _ in range(3):
        assert client.post(f"{url}/like", headers=bob.headers).get_json() == {"liked": True, "likes_count": 1}
    response = client.get(url)
    assert response.headers["X-Cache"] == "L1" and response.get_json()["likes_count"] == 1


def test_a_repeated_like_whose_first_request_did_not_finish_recounts_and_evicts(client, worker, alice, bob):
    post = create_post(client, alice)
    url = f"/api/posts/{post['id']}"
    assert from_l1(client, worker, url)
    # The first request committed its like and went no further (its process died).
    worker.repo.db.likes.insert_one({"user_id": ObjectId(bob.id), "post_id": ObjectId(post["id"])})
    assert client.get(url).get_json()["likes_count"] == 0  # the caches cannot know
    assert client.post(f"{url}/like", headers=bob.headers).get_json() == {"liked": True, "likes_count": 1}
    assert client.get(url).get_json()["likes_count"] == 1


def test_a_repeated_follow_of_a_settled_follow_redoes_nothing(client, worker, alice, bob):
    create_post(client, alice, "for the feed")
    follow = f"/api/users/{alice.id}/follow"
    assert client.post(follow, headers=bob.headers).get_json() == {"following": True}
    assert worker.repo.follow_settled(ObjectId(bob.id), ObjectId(alice.id))
    urls = [f"/api/users/{alice.id}", f"/api/users/{bob.id}", f"/api/users/{bob.id}/feed"]
    assert all(from_l1(client, worker, url) for url in urls)
    assert client.post(follow, headers=bob.headers).get_json() == {"following": True}
    assert [client.get(url).headers["X-Cache"] for url in urls] == ["L1"] * 3
    assert client.get(urls[0]).get_json()["followers_count"] == 1


def test_a_repeated_follow_whose_first_request_did_not_finish_recounts_and_evicts(client, worker, alice, bob):
    create_post(client, alice, "for the feed")
    assert from_l1(client, worker, f"/api/users/{bob.id}/feed")
    worker.repo.db.follows.insert_one({"follower_id": ObjectId(bob.id), "followee_id": ObjectId(alice.id)})
    assert client.post(f"/api/users/{alice.id}/follow", headers=bob.headers).get_json() == {"following": True}
    assert client.get(f"/api/users/{alice.id}").get_json()["followers_count"] == 1
    assert client.get(f"/api/users/{bob.id}").get_json()["following_count"] == 1
    assert [p["content"] for p in client.get(f"/api/users/{bob.id}/feed").get_json()["items"]] == ["for the feed"]


def test_an_unlike_and_a_new_like_is_a_new_like(client, worker, alice, bob):
    post = create_post(client, alice)
    url = f"/api/posts/{post['id']}"
    client.post(f"{url}/like", headers=bob.headers)
    assert client.delete(f"{url}/like", headers=bob.headers).get_json() == {"liked": False, "likes_count": 0}
    assert not worker.repo.like_settled(ObjectId(bob.id), ObjectId(post["id"]))
    assert client.post(f"{url}/like", headers=bob.headers).get_json() == {"liked": True, "likes_count": 1}
    assert client.get(url).get_json()["likes_count"] == 1
