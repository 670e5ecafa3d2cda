"""End to end, 4 gunicorn workers: every freshness promise of API.md holds on every worker as
soon as the write returns, while background readers keep the same keys warm in L1 and L2.

After each write, the affected reads are sent on fresh connections, several at a time, until
every worker has answered each of them (at least twice); every single answer must already
show the write. Writes go through `writes_to(dep)`, so test_two_servers.py runs these same
checks with writes on one app server and reads on another.
"""
import itertools

import pytest

from .deployment import Deployment
from .support import CHECKED, Hammer, Probe, fresh, on_every_worker, register_and_login, writes_to

WORKERS = 4


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    with Deployment(tmp_path_factory.mktemp("freshness") / "var", workers=WORKERS) as running:
        yield running
    print(f"\nfreshness: {CHECKED['answers']} answers checked right after writes, on {WORKERS} workers")


@pytest.fixture(scope="module")
def world(dep):
    """An author with posts and three followers."""
    ann_id, ann = register_and_login(dep, "ann_fresh", display_name="Ann")
    followers = [register_and_login(dep, f"fol{i}_fresh") for i in range(3)]
    for _, headers in followers:
        assert fresh("POST", writes_to(dep).url(f"/api/users/{ann_id}/follow"), headers=headers).status_code == 200
    posts = [create_post(dep, ann, f"ann says {i}") for i in range(3)]
    return {"ann_id": ann_id, "ann": ann, "followers": followers, "posts": posts}


def create_post(dep, headers, content, with_time=False):
    response = fresh("POST", writes_to(dep).url("/api/posts"), json={"content": content}, headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    return (body["created_at"], body["id"]) if with_time else body["id"]


def write(method, dep, path, headers, **kwargs):
    """Perform a write on a fresh connection; returns (response, perf_counter at its return)."""
    import time

    response = fresh(method, writes_to(dep).url(path), headers=headers, **kwargs)
    return response, time.perf_counter()


# --- checks ----------------------------------------------------------------------------------

def ok(response):
    assert response.status_code == 200, (response.status_code, response.text[:200])
    return response.json()


def is_status(code):
    def check(response):
        assert response.status_code == code, (response.status_code, response.text[:200])
    return check


def profile_is(**expected):
    def check(response):
        body = ok(response)
        got = {name: body[name] for name in expected}
        assert got == expected, f"got {got}, expected {expected}"
    return check


def authored_by(author_id, display_name, at_least=1):
    """Every item of a post listing by author_id carries that author's current display_name."""
    def check(response):
        items = [i for i in ok(response)["items"] if i["author"]["id"] == author_id]
        assert len(items) >= at_least, f"only {len(items)} posts of {author_id}"
        names = {i["author"]["display_name"] for i in items}
        assert names == {display_name}, f"author names {names}, expected {display_name!r}"
    return check


def post_is_authored_by(display_name):
    def check(response):
        name = ok(response)["author"]["display_name"]
        assert name == display_name, f"author name {name!r}, expected {display_name!r}"
    return check


def first_item_is(post_id):
    def check(response):
        items = ok(response)["items"]
        assert items and items[0]["id"] == post_id, \
            f"first item {items[0]['id'] if items else None}, expected {post_id}"
    return check


def ids_are(expected_ids):
    expected_ids = list(expected_ids)

    def check(response):
        got = [i["id"] for i in ok(response)["items"]]
        assert got == expected_ids, f"items {got}, expected {expected_ids}"
    return check


def lacks(post_id, at_least=0):
    def check(response):
        ids = [i["id"] for i in ok(response)["items"]]
        assert post_id not in ids, f"deleted post {post_id} still listed"
        assert len(ids) >= at_least, f"only {len(ids)} items, expected at least {at_least}"
    return check


def has(post_id):
    def check(response):
        assert post_id in [i["id"] for i in ok(response)["items"]], f"{post_id} not listed"
    return check


def likes_in_listing(post_id, count):
    def check(response):
        found = [i["likes_count"] for i in ok(response)["items"] if i["id"] == post_id]
        assert found == [count], f"likes_count of {post_id}: {found}, expected [{count}]"
    return check


def likes_of_post(count):
    def check(response):
        got = ok(response)["likes_count"]
        assert got == count, f"likes_count {got}, expected {count}"
    return check


def feed_probes(world, check, name=""):
    """A follower's home feed through both routes, for every follower."""
    probes = []
    for fid, headers in world["followers"]:
        probes.append(Probe(f"/api/users/{fid}/feed", check, name=f"{name}users/{fid[-4:]}/feed"))
        probes.append(Probe("/api/feed", check, headers=headers, name=f"{name}/api/feed as {fid[-4:]}"))
    return probes


# --- the promises ------------------------------------------------------------------------------

def test_repeated_read_of_a_warm_key_is_an_l1_hit_on_every_worker(dep, world):
    ann_id, post_id = world["ann_id"], world["posts"][0]
    fid = world["followers"][0][0]
    paths = [f"/api/users/{ann_id}", f"/api/posts/{post_id}", f"/api/users/{ann_id}/posts", f"/api/users/{fid}/feed"]

    def l1(response):
        ok(response)
        assert response.headers["X-Cache"] == "L1", f"X-Cache {response.headers['X-Cache']}"

    on_every_worker(dep, [Probe(p, is_status(200)) for p in paths], per_worker=1)  # warm every worker
    seen = on_every_worker(dep, [Probe(p, l1) for p in paths], per_worker=3)
    assert all(len(workers) == WORKERS for workers in seen.values())


def test_profile_edit_is_visible_everywhere_at_once(dep, world):
    ann_id, ann = world["ann_id"], world["ann"]
    post_id = world["posts"][0]
    fid, _ = world["followers"][0]
    hot = [(f"/api/users/{ann_id}", {}), ("/api/users/by-username/ANN_fresh", {}),
           (f"/api/users/{ann_id}/posts", {}), (f"/api/posts/{post_id}", {}), (f"/api/users/{fid}/feed", {})]
    with Hammer(dep, hot):
        for n in range(4):
            name, bio = f"Ann {n}", f"bio number {n}"
            response, returned = write("PATCH", dep, "/api/me", ann, json={"display_name": name, "bio": bio})
            assert response.status_code == 200, response.text
            assert (response.json()["display_name"], response.json()["bio"]) == (name, bio)
            on_every_worker(dep, [
                Probe(f"/api/users/{ann_id}", profile_is(display_name=name, bio=bio)),
                Probe("/api/users/by-username/ann_FRESH", profile_is(display_name=name, bio=bio)),
                Probe(f"/api/users/{ann_id}/posts", authored_by(ann_id, name, at_least=3)),
                Probe(f"/api/posts/{post_id}", post_is_authored_by(name)),
                Probe(f"/api/users/{fid}/feed", authored_by(ann_id, name, at_least=3)),
            ], written_at=returned)


def test_new_post_heads_the_timeline_and_every_followers_feed_at_once(dep, world):
    ann_id, ann = world["ann_id"], world["ann"]
    hot = [(f"/api/users/{ann_id}/posts", {}), (f"/api/users/{ann_id}", {})]
    hot += [(f"/api/users/{fid}/feed", {}) for fid, _ in world["followers"]]
    hot += [("/api/feed", headers) for _, headers in world["followers"]]
    posts_count = ok(fresh("GET", dep.url(f"/api/users/{ann_id}")))["posts_count"]
    with Hammer(dep, hot):
        for n in range(3):
            response, returned = write("POST", dep, "/api/posts", ann, json={"content": f"fresh post {n}"})
            assert response.status_code == 201, response.text
            post_id = response.json()["id"]
            world["posts"].append(post_id)
            posts_count += 1
            on_every_worker(dep, [
                Probe(f"/api/users/{ann_id}/posts", first_item_is(post_id)),
                Probe(f"/api/users/{ann_id}", profile_is(posts_count=posts_count)),
                *feed_probes(world, first_item_is(post_id)),
            ], written_at=returned)


def test_deleted_post_is_gone_from_every_listing_at_once(dep, world):
    ann_id, ann = world["ann_id"], world["ann"]
    doomed = [create_post(dep, ann, f"doomed post {n} zq{n}x") for n in range(3)]
    # Explore may lag *new* posts by its TTL; a delete bumps its generation, so after this one
    # every explore page below is built after the doomed posts existed.
    sacrificial = create_post(dep, ann, "sacrificial")
    assert fresh("DELETE", writes_to(dep).url(f"/api/posts/{sacrificial}"), headers=ann).status_code == 204
    explore = ["/api/posts?page_size=100", f"/api/posts?author={ann_id}&page_size=100",
               "/api/posts?sort=popular&page_size=100"]
    posts_count = ok(fresh("GET", dep.url(f"/api/users/{ann_id}")))["posts_count"]
    for n, post_id in enumerate(doomed):
        hot = [(f"/api/posts/{post_id}", {}), (f"/api/users/{ann_id}/posts", {}), (f"/api/posts?q=zq{n}x", {})]
        hot += [(path, {}) for path in explore]
        hot += [(f"/api/users/{fid}/feed", {}) for fid, _ in world["followers"]]
        hot += [("/api/feed", headers) for _, headers in world["followers"]]
        with Hammer(dep, hot):
            # The promise can only fail if the post was there, warm, on every worker.
            on_every_worker(dep, [Probe(f"/api/posts/{post_id}", is_status(200)),
                                  Probe(f"/api/posts?q=zq{n}x", has(post_id)),
                                  *[Probe(path, has(post_id)) for path in explore],
                                  Probe(f"/api/users/{ann_id}/posts", has(post_id)),
                                  *feed_probes(world, has(post_id))], per_worker=1)
            response, returned = write("DELETE", dep, f"/api/posts/{post_id}", ann)
            assert response.status_code == 204, response.text
            posts_count -= 1
            on_every_worker(dep, [
                Probe(f"/api/posts/{post_id}", is_status(404)),
                Probe(f"/api/users/{ann_id}/posts", lacks(post_id, at_least=3)),
                Probe(f"/api/users/{ann_id}", profile_is(posts_count=posts_count)),
                Probe(f"/api/posts?q=zq{n}x", ids_are([])),
                *[Probe(path, lacks(post_id, at_least=3)) for path in explore],
                *feed_probes(world, lacks(post_id, at_least=3)),
            ], written_at=returned)


def test_follow_and_unfollow_show_in_the_next_feed_read_with_exact_counts(dep, world):
    reader_id, reader = register_and_login(dep, "reader_fresh")
    authors = [register_and_login(dep, f"writer{i}_fresh") for i in range(2)]
    posts = {aid: [create_post(dep, headers, f"writer {i} post {k}", with_time=True) for k in range(2)]
             for i, (aid, headers) in enumerate(authors)}
    hot = [(f"/api/users/{reader_id}/feed", {}), ("/api/feed", reader), (f"/api/users/{reader_id}", {})]
    hot += [(f"/api/users/{aid}", {}) for aid, _ in authors]
    followed = []
    with Hammer(dep, hot):
        steps = [(aid, True) for aid, _ in authors] + [(authors[0][0], False), (authors[0][0], True),
                                                        (authors[1][0], False), (authors[0][0], False)]
        for author_id, following in steps:
            method = "POST" if following else "DELETE"
            response, returned = write(method, dep, f"/api/users/{author_id}/follow", reader)
            assert response.json() == {"following": following}
            followed = followed + [author_id] if following else [a for a in followed if a != author_id]
            newest_first = sorted(itertools.chain.from_iterable(posts[a] for a in followed), reverse=True)
            expected_feed = [post_id for _, post_id in newest_first]
            on_every_worker(dep, [
                Probe(f"/api/users/{reader_id}/feed", ids_are(expected_feed)),
                Probe("/api/feed", ids_are(expected_feed), headers=reader),
                Probe(f"/api/users/{reader_id}", profile_is(following_count=len(followed))),
                *[Probe(f"/api/users/{aid}", profile_is(followers_count=int(aid in followed)), name=f"writer {aid}")
                  for aid, _ in authors],
            ], written_at=returned)


def test_like_and_unlike_are_exact_on_the_next_read_anywhere(dep, world):
    ann_id = world["ann_id"]
    post_id = world["posts"][-1]
    likers = [register_and_login(dep, f"liker{i}_fresh")[1] for i in range(3)]
    fid = world["followers"][0][0]
    listings = [f"/api/users/{ann_id}/posts", f"/api/users/{fid}/feed", f"/api/posts?author={ann_id}&page_size=100",
                f"/api/posts?sort=popular&author={ann_id}&page_size=100"]
    hot = [(f"/api/posts/{post_id}", {})] + [(path, {}) for path in listings]
    count = ok(fresh("GET", dep.url(f"/api/posts/{post_id}")))["likes_count"]
    assert count == 0
    with Hammer(dep, hot):
        steps = [(h, True) for h in likers] + [(likers[1], False), (likers[1], True), (likers[0], False)]
        liked = set()
        for headers, like in steps:
            response, returned = write("POST" if like else "DELETE", dep, f"/api/posts/{post_id}/like", headers)
            assert response.status_code == 200, response.text
            (liked.add if like else liked.discard)(headers["Authorization"])
            assert response.json() == {"liked": like, "likes_count": len(liked)}
            on_every_worker(dep, [
                Probe(f"/api/posts/{post_id}", likes_of_post(len(liked))),
                *[Probe(path, likes_in_listing(post_id, len(liked))) for path in listings],
            ], written_at=returned)
