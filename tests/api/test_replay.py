"""A cacheable GET made from L1 values alone is answered again without Flask while L1 still
holds those very values (feedapp/api/replay.py): byte for byte the answer Flask gives, counted
and logged as Flask's is, and never once a write, an eviction or a lost invalidation stream has
replaced one of the values."""
import json
import logging

import pytest
from werkzeug.test import Client

from feedapp.observability.metrics import REQUEST_SECONDS

from .helpers import counted_by, create_post, without_latency

VARIANTS = ({}, {"Accept-Encoding": "br"}, {"Accept-Encoding": "gzip, deflate"}, {"Accept-Encoding": "identity"})


def replays(worker) -> int:
    return worker.stats.counted().get("answers.replayed", 0)


def flask_answer(app, url, headers):
    """The answer of the same app without the replay in front of it."""
    return Client(app.wsgi_app.app).get(url, headers=headers)


def comparable(response):
    """Status, headers (all but X-Request-ID, which is each request's own) and body."""
    headers = sorted((name, value) for name, value in response.headers if name != "X-Request-ID")
    return response.status_code, headers, response.get_data()


def warm(client, worker, url, headers=None):
    """Read url until its answer is kept (a load, an L1 fill, an answer made from L1)."""
    assert worker.listener.wait_live(5)
    for _ in range(3):
        assert client.get(url, headers=headers).status_code in (200, 304)


@pytest.fixture
def urls(client, alice, bob):
    """Every public cacheable route, read after bob follows alice and alice posts 25 times."""
    assert client.post(f"/api/users/{alice.id}/follow", headers=bob.headers).status_code == 200
    posts = [create_post(client, alice, f"post {n} " + "words " * 12) for n in range(25)]
    return [
        f"/api/users/{alice.id}",
        f"/api/users/by-username/{alice.username}",
        f"/api/users/{alice.id}/posts",
        f"/api/users/{alice.id}/posts?limit=5",
        f"/api/users/{bob.id}/feed",
        f"/api/posts/{posts[0]['id']}",
        "/api/posts?sort=recent",
    ]


def test_a_replayed_answer_is_the_answer_flask_gives(app, client, worker, urls):
    for url in urls:
        for headers in VARIANTS:
            warm(client, worker, url, headers)
            before = replays(worker)
            replayed = client.get(url, headers=headers)
            assert replays(worker) == before + 1, (url, headers)
            assert replayed.headers["X-Cache"] == "L1"
            assert comparable(replayed) == comparable(flask_answer(app, url, headers)), (url, headers)


def test_a_conditional_get_is_replayed_as_its_304_or_200(app, client, worker, urls):
    for url in urls:
        for headers in VARIANTS:
            tag = client.get(url, headers=headers).headers["ETag"]
            for wanted in (tag, tag.removeprefix("W/"), '"not-the-tag"', f'"other", {tag}', "*"):
                conditional = {**headers, "If-None-Match": wanted}
                warm(client, worker, url, conditional)
                before = replays(worker)
                replayed = client.get(url, headers=conditional)
                assert replays(worker) == before + 1
                assert replayed.status_code == (200 if wanted == '"not-the-tag"' else 304)
                assert comparable(replayed) == comparable(flask_answer(app, url, conditional)), (url, wanted)


def test_compressed_answers_are_replayed_in_their_own_coding(client, worker, urls):
    feed = urls[4]
    for coding in ("br", "gzip"):
        warm(client, worker, feed, {"Accept-Encoding": coding})
        before = replays(worker)
        replayed = client.get(feed, headers={"Accept-Encoding": coding})
        assert replays(worker) == before + 1
        assert replayed.headers["Content-Encoding"] == coding and replayed.headers["ETag"].startswith("W/")
    plain = client.get(feed)
    assert "Content-Encoding" not in plain.headers and not plain.headers["ETag"].startswith("W/")


@pytest.mark.parametrize("write", ["profile edit", "post", "like", "follow"])
def test_a_write_ends_the_replay_of_every_answer_it_changes(client, worker, urls, alice, bob, write):
    for url in urls:
        warm(client, worker, url)
    before = {url: client.get(url).get_json() for url in urls}
    if write == "profile edit":
        assert client.patch("/api/me", json={"display_name": "Alice Renamed"}, headers=alice.headers).status_code == 200
    elif write == "post":
        create_post(client, alice, "the newest")
    elif write == "like":
        post_id = urls[5].rsplit("/", 1)[1]
        assert client.post(f"/api/posts/{post_id}/like", headers=bob.headers).status_code == 200
    else:
        assert client.delete(f"/api/users/{alice.id}/follow", headers=bob.headers).status_code == 200
    after = {url: client.get(url).get_json() for url in urls}
    flask = {url: flask_answer(client.application, url, {}).get_json() for url in urls}
    assert after == flask  # what Flask answers now, every one
    assert after != before


def test_nothing_is_replayed_once_l1_no_longer_vouches_for_its_values(client, worker, urls, monkeypatch):
    profile = urls[0]
    warm(client, worker, profile)
    worker.cache.local.clear()  # an eviction of everything (a lost stream clears L1 so)
    before = replays(worker)
    assert client.get(profile).headers["X-Cache"] != "L1"
    assert replays(worker) == before
    warm(client, worker, profile)
    before = replays(worker)
    monkeypatch.setattr(worker.cache.trust, "l1_until", 0.0)  # L1 not trusted: the stream is down
    response = client.get(profile)
    assert response.status_code == 200 and response.headers["X-Cache"] != "L1"
    assert replays(worker) == before


@pytest.mark.parametrize("extra", [
    {"method": "HEAD"},
    {"headers": {"Origin": "https://elsewhere.example"}},
    {"headers": {"If-Match": "*"}},
    {"data": b"{}", "content_type": "application/json"},
])
def test_requests_whose_answer_could_differ_go_through_flask(app, client, worker, urls, extra):
    profile = urls[0]
    warm(client, worker, profile)
    for _ in range(3):
        before = replays(worker)
        response = client.open(profile, **{"method": "GET", **extra})
        assert replays(worker) == before
        assert response.status_code in (200, 304, 412)
    assert comparable(client.get(profile)) == comparable(flask_answer(app, profile, {}))  # HEAD kept nothing


def test_an_answer_made_for_an_authenticated_caller_is_never_replayed(client, worker, urls, bob):
    for _ in range(4):
        before = replays(worker)
        assert client.get("/api/feed", headers=bob.headers).status_code == 200
        assert replays(worker) == before


def test_a_replay_is_counted_and_logged_as_a_flask_answer_is(app, client, worker, urls, caplog):
    profile, route = urls[0], "/api/users/<user_id>"
    warm(client, worker, profile)
    flask_counts = counted_by(worker, lambda: flask_answer(app, profile, {}))
    caplog.set_level(logging.INFO, logger="feedapp.access")
    histogram = _histogram_count(route)
    replay_counts = counted_by(worker, lambda: client.get(profile, headers={"X-Request-ID": "req-42"}))
    assert replay_counts.pop("answers.replayed") == 1
    assert without_latency(replay_counts) == without_latency(flask_counts) != {}
    assert sum(v for k, v in replay_counts.items() if k.startswith("latency.")) == 1
    assert _histogram_count(route) == histogram + 1
    line = json.loads(caplog.records[-1].getMessage())
    assert line["route"] == route and line["path"] == profile and line["status"] == 200
    assert line["tier"] == "L1" and line["family"] == "profile" and line["request_id"] == "req-42"
    assert client.get("/api/cache/stats").get_json()["tiers"]["l1"]["replayed"] == replays(worker) > 0


def test_a_replay_carries_its_own_request_id(client, worker, urls):
    profile = urls[0]
    warm(client, worker, profile)
    ids = {client.get(profile).headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert client.get(profile, headers={"X-Request-ID": "abc-1"}).headers["X-Request-ID"] == "abc-1"
    assert client.get(profile, headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"] != "bad id!"


def test_kept_answers_stay_within_their_byte_budget(app, client, worker, urls):
    replay = app.wsgi_app
    replay.max_bytes = 3_000  # a few profiles' answers; a page's is larger than all of it
    for url in [*urls, *urls][::-1]:  # the profile last
        warm(client, worker, url)
        assert replay._bytes <= replay.max_bytes
    assert 0 < len(replay) < len(urls)
    before = replays(worker)
    client.get(urls[0])
    assert replays(worker) == before + 1  # the newest is kept



def _histogram_count(route) -> float:
    return sum(sample.value for metric in REQUEST_SECONDS.collect() for sample in metric.samples
               if sample.name.endswith("_count") and sample.labels["route"] == route
               and sample.labels["tier"] == "L1")


def test_an_answer_found_outdated_is_dropped_at_once(app, client, worker, urls, alice, monkeypatch):
    replay, profile = app.wsgi_app, urls[0]
    warm(client, worker, profile)
    kept = len(replay)
    assert client.patch("/api/me", json={"bio": "changed"}, headers=alice.headers).status_code == 200
    monkeypatch.setattr(worker.cache.local, "fill", lambda *args, **kwargs: False)  # nothing new is kept
    assert client.get(profile).get_json()["bio"] == "changed"  # through Flask: L1 no longer holds it
    assert len(replay) == kept - 1  # and the outdated answer went


def test_the_least_recently_replayed_answer_goes_first(app, client, worker, urls, bob):
    replay, first, second, third = app.wsgi_app, urls[0], urls[1], f"/api/users/{bob.id}"
    warm(client, worker, first)
    warm(client, worker, second)
    assert len(replay) == 2
    replay.max_bytes = replay._bytes + 1  # room for these two answers, not for a third (bob's, smaller)
    before = replays(worker)
    client.get(first)  # replayed: now the most recently used
    assert replays(worker) == before + 1
    warm(client, worker, third)  # a third answer pushes one out: the second
    assert len(replay) == 2
    before = replays(worker)
    client.get(first)
    assert replays(worker) == before + 1
    client.get(second)
    assert replays(worker) == before + 1  # the second went


def test_an_answer_loaded_into_l1_is_replayed_from_the_next_request_on(app, client, worker, urls):
    assert worker.listener.wait_live(5)
    for url in urls:
        client.get(url)
    for url in urls:
        worker.cache.local.clear()  # every value of this answer comes from L2 once more
        loaded = client.get(url)
        assert loaded.headers["X-Cache"] == "L2", url
        before = replays(worker)
        replayed = client.get(url)
        assert replays(worker) == before + 1, url
        assert replayed.headers["X-Cache"] == "L1"
        assert comparable(replayed) == comparable(flask_answer(app, url, {})), url


def test_an_answer_from_a_value_l1_did_not_take_is_not_kept(client, worker, urls, monkeypatch):
    profile = urls[0]
    assert worker.listener.wait_live(5)
    client.get(profile)
    worker.cache.local.clear()
    monkeypatch.setattr(worker.cache.local, "fill", lambda *args, **kwargs: False)  # L1 refuses every fill
    before = replays(worker)
    for _ in range(3):
        assert client.get(profile).headers["X-Cache"] == "L2"
    assert replays(worker) == before
