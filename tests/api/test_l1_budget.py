"""L1's byte budget seen through the API: a composed page too large to keep (over 1/64 of
L1_MAX_BYTES) is not kept, yet it is answered in full from its cached parts."""
import pytest
from werkzeug.test import Client

from .helpers import counted_by, create_post, without_latency

L1_MAX_BYTES = 1024 * 1024  # entries over 16 KiB are not kept


@pytest.fixture
def config(config):
    return config.with_overrides(l1_max_bytes=L1_MAX_BYTES)


@pytest.mark.parametrize("listing", ["feed", "posts"])
def test_a_page_too_large_for_l1_is_not_kept_but_served_from_its_cached_parts(client, worker, alice, bob, listing):
    assert client.post(f"/api/users/{alice.id}/follow", headers=bob.headers).status_code == 200
    for n in range(100):
        create_post(client, alice, f"post {n}: " + "words " * 30)
    owner = bob if listing == "feed" else alice
    url = f"/api/users/{owner.id}/{listing}?limit=100"
    first = client.get(url)
    assert first.status_code == 200 and len(first.get_data()) > L1_MAX_BYTES // 64
    again = client.get(url)
    assert again.get_json() == first.get_json() and again.headers["X-Cache"] == "L1"
    assert worker.stats.counted().get("l1.hits.page", 0) == 0  # not kept: again is the parts' answer
    assert worker.cache.local.too_large >= 1
    assert client.get("/api/cache/stats").get_json()["tiers"]["l1"]["too_large"] >= 1
    small = client.get(f"/api/users/{owner.id}/{listing}?limit=5")
    assert client.get(f"/api/users/{owner.id}/{listing}?limit=5").get_json() == small.get_json()
    assert worker.stats.counted()["l1.hits.page"] == 1  # a small page is kept


def test_a_replayed_page_too_large_to_keep_is_counted_as_flask_counts_it(client, worker, alice):
    """Answered again without Flask (feedapp/api/replay.py) from its parts, it counts the page's
    miss and its parts' hits, as composing it anew does."""
    for n in range(100):
        create_post(client, alice, f"post {n}: " + "words " * 30)
    url = f"/api/users/{alice.id}/posts?limit=100"
    assert worker.listener.wait_live(5)
    for _ in range(3):
        client.get(url)
    flask_counts = counted_by(worker, lambda: Client(client.application.wsgi_app.app).get(url))
    replay_counts = counted_by(worker, lambda: client.get(url))
    assert replay_counts.pop("answers.replayed") == 1
    assert flask_counts["l1.misses.page"] == 1
    assert without_latency(replay_counts) == without_latency(flask_counts)
