def test_register_follow_post_feed(client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    assert client.post(f"/api/users/{bob.id}/follow", headers=alice.headers).get_json() == {"following": True}
    created = client.post("/api/posts", json={"content": " hi "}, headers=bob.headers)
    assert created.status_code == 201
    assert created.get_json()["content"] == "hi"
    feed = client.get("/api/feed", headers=alice.headers)
    assert feed.status_code == 200
    assert feed.headers["X-Cache"] == "L3"
    assert [p["id"] for p in feed.get_json()["items"]] == [created.get_json()["id"]]
