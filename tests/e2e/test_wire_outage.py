"""End to end, 4 gunicorn workers on a wire server that stops answering under load: SIGSTOP
(a hung MongoDB: connections open, no replies) and SIGKILL (a crashed one: connections
refused), each followed by recovery (SIGCONT; a restart on the same storage).

While it is down, /readyz says `"mongo": "down"` with 503, writes answer 503 in API.md's error
shape, reads of warm keys still answer 200 from the caches, and no request answers anything
but 200 or 503; once it is back, /readyz is 200 again and writes succeed. The server is
SecantusDB, started here (a TEST_MONGO_URI server cannot be paused or killed by the tests).
"""
import time

import pytest

from tests.wireserver import WireServer

from .deployment import Deployment
from .support import Probe, fresh, on_every_worker, register_and_login
from .traffic import Traffic

pytestmark = [pytest.mark.wire, pytest.mark.slow]

WORKERS = 4
TIMEOUT_MS = 1000  # MONGO_TIMEOUT_MS: server selection and connect
SOCKET_TIMEOUT_MS = 2000  # MONGO_SOCKET_TIMEOUT_MS: a reply that does not come
OUTAGE_S = 5
RECOVERY_S = 30  # pymongo's monitor finds the server again within its heartbeat (10 s)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with WireServer(tmp_path_factory.mktemp("wire_outage")) as running:
        yield running


@pytest.fixture(scope="module")
def dep(tmp_path_factory, server):
    env = {"MONGO_URI": server.uri("feedapp"), "MONGO_TIMEOUT_MS": str(TIMEOUT_MS),
           "MONGO_SOCKET_TIMEOUT_MS": str(SOCKET_TIMEOUT_MS), "LOG_LEVEL": "WARNING"}
    with Deployment(tmp_path_factory.mktemp("wire_outage_app") / "var", workers=WORKERS, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def world(dep):
    """A watched user (the traffic's writer edits it) and warm paths no one writes to."""
    watched_id, headers = register_and_login(dep, "watched_wire", display_name="initial")
    author_id, author = register_and_login(dep, "author_wire")
    posts = [fresh("POST", dep.url("/api/posts"), headers=author, json={"content": f"post {n}"}).json()["id"]
             for n in range(2)]
    # an odd number of paths: Traffic's readers take every other read from them, by index
    others = [f"/api/users/{author_id}"] + [f"/api/posts/{post_id}" for post_id in posts]
    return {"watched_id": watched_id, "headers": headers, "author": author, "others": others}


def is_503(response):
    """503 in API.md's error shape, with the Retry-After the API promises on every 503."""
    assert response.status_code == 503, (response.status_code, response.text[:200])
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "Retry-After" in response.headers


def while_down(dep, world) -> dict:
    """What the deployment answers while the store is down: readyz, a write, warm reads."""
    ready = fresh("GET", dep.url("/readyz"))
    started = time.perf_counter()
    post = fresh("POST", dep.url("/api/posts"), headers=world["author"], json={"content": "while down"})
    post_s = time.perf_counter() - started
    warm = [fresh("GET", dep.url(path)) for path in world["others"] * 3]
    return {"ready": ready, "post": post, "post_s": post_s, "warm": warm}


def wait_until_ready(dep, since) -> float:
    """Seconds from `since` until /readyz answers 200 (fails after RECOVERY_S)."""
    deadline = since + RECOVERY_S
    while time.perf_counter() < deadline:
        if fresh("GET", dep.url("/readyz")).status_code == 200:
            return round(time.perf_counter() - since, 2)
        time.sleep(0.2)
    pytest.fail(f"/readyz not 200 within {RECOVERY_S} s of the store's return")


def check_outage(dep, world, traffic, down, fault, back):
    assert down["ready"].status_code == 503
    assert down["ready"].json() == {"status": "degraded", "mongo": "down", "redis": "ok"}
    is_503(down["post"])
    # a bounded wait (a few socket timeouts: each store call and its one retry), not a hang
    assert down["post_s"] < 5 * SOCKET_TIMEOUT_MS / 1000
    assert [r.status_code for r in down["warm"]] == [200] * len(down["warm"])
    statuses = {r["status"] for r in traffic.reads}
    assert statuses <= {200, 503}, statuses  # nothing else: no 500, no connection error
    during = [r for r in traffic.reads if fault <= r["start"] < back and r["path"] in world["others"]]
    assert during and {r["status"] for r in during} == {200}, "warm reads failed while the store was down"
    assert fresh("GET", dep.url("/readyz")).json() == {"status": "ok", "mongo": "ok", "redis": "ok"}
    after = fresh("POST", dep.url("/api/posts"), headers=world["author"], json={"content": "after"})
    assert after.status_code == 201, after.text
    final = fresh("GET", dep.url(f"/api/users/{world['watched_id']}")).json()["display_name"]
    assert final == f"v{traffic.writes[-1]['k']}"  # the last acknowledged write is what everyone reads


# (stop it, bring it back): a hung server resumes; a crashed one restarts on the same port and
# storage, where WiredTiger recovers what was acknowledged.
OUTAGES = {"hung (SIGSTOP, SIGCONT)": (WireServer.pause, WireServer.resume),
           "crashed (SIGKILL, restart)": (WireServer.kill, WireServer.start)}


@pytest.mark.parametrize("outage", OUTAGES)
def test_a_store_outage_answers_503_serves_warm_reads_and_recovers(dep, server, world, outage):
    stop, bring_back = OUTAGES[outage]
    with Traffic(dep, world["watched_id"], world["headers"], world["others"]) as traffic:
        time.sleep(2)
        fault = traffic.mark()
        stop(server)
        try:
            down = while_down(dep, world)
            time.sleep(max(0.0, OUTAGE_S - (traffic.mark() - fault)))
        finally:
            back = traffic.mark()
            bring_back(server)
        recovered_s = wait_until_ready(dep, back)
        time.sleep(1)
    print(f"\n{outage}: write refused in {down['post_s']:.2f} s, /readyz 200 {recovered_s} s after its return")
    check_outage(dep, world, traffic, down, fault, back)


def test_a_profile_edit_whose_reply_was_lost_shows_everywhere_once_the_store_applies_it(dep, server):
    # A write sent to a hung server times out (503), yet the server applies it when it resumes:
    # the caches must not keep the old profile (for up to L2's 600 s) once the store has the new.
    user_id, headers = register_and_login(dep, "lost_reply", display_name="before")
    profile = f"/api/users/{user_id}"
    on_every_worker(dep, [Probe(profile, shows("before"))], per_worker=1)
    # Every worker holds an idle connection to the store (GET /api/me always reads it), so the
    # edit is sent before the server stops answering: a worker that had to open a connection
    # would time out in its handshake and never send the write the server is to apply.
    on_every_worker(dep, [Probe("/api/me", shows("before"), headers=headers)], per_worker=1)
    server.pause()
    try:
        edit = fresh("PATCH", dep.url("/api/me"), headers=headers, json={"display_name": "lost reply"})
    finally:
        server.resume()
    is_503(edit)
    back = time.perf_counter()
    with server.client() as client:
        while client.feedapp.users.find_one({"username": "lost_reply"})["display_name"] != "lost reply":
            assert time.perf_counter() < back + RECOVERY_S, "the server never applied the edit"
            time.sleep(0.1)
    wait_until_ready(dep, back)
    while time.perf_counter() < back + RECOVERY_S:
        if {fresh("GET", dep.url(profile)).json()["display_name"] for _ in range(8)} == {"lost reply"}:
            break
        time.sleep(0.5)
    print(f"\nan edit answered 503 and applied on SIGCONT: served {time.perf_counter() - back:.2f} s later")
    on_every_worker(dep, [Probe(profile, shows("lost reply"))], per_worker=2)


def shows(display_name):
    def check(response):
        assert response.json()["display_name"] == display_name
    return check
