"""L1's byte budget seen through the API: a composed page too large to keep (over 1/64 of
L1_MAX_BYTES) is not kept, yet it is answered in full from its cached parts."""
import pytest

from .helpers import create_post

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
    assert worker.stats.counted().get("l1.hits.page", 0) == 0  # rebuilt, not kept
    assert worker.cache.local.too_large >= 2
    assert client.get("/api/cache/stats").get_json()["tiers"]["l1"]["too_large"] >= 2
    small = client.get(f"/api/users/{owner.id}/{listing}?limit=5")
    assert client.get(f"/api/users/{owner.id}/{listing}?limit=5").get_json() == small.get_json()
    assert worker.stats.counted()["l1.hits.page"] == 1  # a small page is kept
