"""A seeded random simulation of writes, reads and faults across workers, checking after every
step that no read shows older data than the writes that returned before it began, and that
every counter equals its source.

Steps are drawn with weights from `STEPS`. Each write is followed by reads of what it changed
on every worker; faults are injected around writes (one worker cut off from Redis, a slow
listener, the store failing before or after a commit or losing a reply, L1 TTLs running out)
and races are run in threads (an unfollow against a post's fan-out, concurrent reads against a
write). A check that fails is recorded as a `Violation` with the steps that led to it.
"""
import itertools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bson import ObjectId

from feedapp.observability.report import tier_counts

from .world import PASSWORD, Truth, settle

_names = itertools.count()


@dataclass
class Violation:
    step: int
    step_name: str
    kind: str
    detail: str
    history: list

    def __str__(self):
        recent = "\n    ".join(self.history[-6:])
        return f"step {self.step} ({self.step_name}): {self.kind}: {self.detail}\n  after:\n    {recent}"


@dataclass
class User:
    id: str
    username: str
    token: str

    @property
    def auth(self):
        return {"Authorization": f"Bearer {self.token}"}


class Simulation:
    def __init__(self, workers, data_dir, seed: int):
        self.workers = workers
        self.truth = Truth(data_dir)
        self.rng = random.Random(seed)
        self.users: list[User] = []
        self.history: list[str] = []
        self.violations: list[Violation] = []
        self.step_no = 0
        self.step_name = "setup"

    # --- driving ------------------------------------------------------------------------------

    def setup(self, users: int = 6):
        for _ in range(users):
            self.users.append(self._register(self.workers[0]))
        for user in self.users[:3]:
            self._write(self.workers[0], "POST", "/api/posts", user, {"content": f"hello from {user.username}"})

    def run(self, steps: int, deadline: float, only=None):
        """Take up to `steps` steps until `deadline`; only: the names of the steps to draw from."""
        kinds = {name: weight for name, weight in STEPS.items() if not only or name in only}
        for self.step_no in range(1, steps + 1):
            if time.monotonic() > deadline:
                break
            name = self.rng.choices(list(kinds), weights=list(kinds.values()))[0]
            self.step_name = name
            getattr(self, "step_" + name)()

    def note(self, text):
        self.history.append(f"{self.step_no}: {text}")

    def report(self, examples: int = 3) -> str:
        """How many violations of each kind, and the first few of each."""
        kinds = {}
        for v in self.violations:
            kinds.setdefault(v.kind, []).append(v)
        lines = []
        for kind, found in kinds.items():
            first = {}
            for v in found:
                first.setdefault(v.step_name, v)
            lines.append(f"{len(found)} {kind} violations; first in each kind of step: "
                         f"{ {name: v.step for name, v in first.items()} }")
            lines += [str(v) for v in list(first.values())[:examples]]
        return "\n".join(lines)

    def violation(self, kind, detail):
        self.violations.append(Violation(self.step_no, self.step_name, kind, detail, list(self.history)))

    # --- plain writes -------------------------------------------------------------------------

    def _worker(self):
        return self.rng.choice(self.workers)

    def _user(self, not_=None):
        return self.rng.choice([u for u in self.users if u is not not_])

    def _register(self, worker) -> User:
        name = f"sim{next(_names)}_{self.rng.randrange(10**6)}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        response = worker.client.post("/api/auth/register", json=body)
        assert response.status_code == 201, response.get_json()
        user_id = response.get_json()["user"]["id"]
        tokens = worker.client.post("/api/auth/login", json={"username": name, "password": PASSWORD}).get_json()
        return User(user_id, name, tokens["access_token"])

    def _write(self, worker, method, path, user, body=None):
        response = worker.client.open(path, method=method, json=body, headers=user.auth)
        self.note(f"{worker.name} {method} {path} as {user.username} -> {response.status_code}")
        if response.status_code >= 500 and response.status_code != 503:
            self.violation("server error", f"{method} {path}: {response.status_code} {response.get_data(as_text=True)[:200]}")
        return response

    def random_write(self, worker):
        """One write of a random kind on worker; returns (what it touched, response)."""
        kind = self.rng.choice(["profile", "follow", "unfollow", "post", "post", "like", "unlike", "delete"])
        return getattr(self, "write_" + kind)(worker)

    def write_profile(self, worker):
        user = self._user()
        self._write(worker, "PATCH", "/api/me", user, {"display_name": f"name-{self.rng.randrange(10**9)}"})
        return {"profiles": [user.id]}

    def write_follow(self, worker, following=True):
        a = self._user()
        b = self._user(not_=a)
        self._write(worker, "POST" if following else "DELETE", f"/api/users/{b.id}/follow", a)
        return {"profiles": [a.id, b.id], "feeds": [a.id]}

    def write_unfollow(self, worker):
        return self.write_follow(worker, following=False)

    def write_post(self, worker):
        author = self._user()
        response = self._write(worker, "POST", "/api/posts", author, {"content": f"post {self.rng.randrange(10**9)}"})
        touched = {"profiles": [author.id], "timelines": [author.id], "feeds": self._followers(author.id)}
        if response.status_code == 201:
            touched["posts"] = [response.get_json()["id"]]
        return touched

    def write_like(self, worker, liked=True):
        post = self._some_post()
        if post is None:
            return {}
        self._write(worker, "POST" if liked else "DELETE", f"/api/posts/{post}/like", self._user())
        return {"posts": [post]}

    def write_unlike(self, worker):
        return self.write_like(worker, liked=False)

    def write_delete(self, worker):
        doc = self._some_post_doc()
        if doc is None:
            return {}
        author = next((u for u in self.users if u.id == str(doc["author_id"])), None)
        if author is None:
            return {}
        self._write(worker, "DELETE", f"/api/posts/{doc['_id']}", author)
        return {"posts": [str(doc["_id"])], "profiles": [author.id], "timelines": [author.id],
                "feeds": self._followers(author.id)}

    def _some_post_doc(self):
        docs = list(self.truth.repo.db.posts.find({}, {"_id": 1, "author_id": 1}))
        return self.rng.choice(docs) if docs else None

    def _some_post(self):
        doc = self._some_post_doc()
        return None if doc is None else str(doc["_id"])

    def _followers(self, user_id) -> list:
        return [str(f) for f in self.truth.repo.follower_ids(ObjectId(user_id))]

    # --- checks -------------------------------------------------------------------------------

    def check(self, touched: dict, workers=None):
        """Read what a write touched on every worker; each read must equal the store."""
        for worker in workers or self.workers:
            for user_id in touched.get("profiles", ()):
                self.check_read(worker, f"/api/users/{user_id}", lambda u=user_id: self.truth.profile(u))
            for post_id in touched.get("posts", ()):
                self.check_read(worker, f"/api/posts/{post_id}", lambda p=post_id: self.truth.post(p))
            for user_id in touched.get("timelines", ()):
                self.check_read(worker, f"/api/users/{user_id}/posts", lambda u=user_id: self.truth.timeline(u), items=True)
            for user_id in touched.get("feeds", ()):
                self.check_read(worker, f"/api/users/{user_id}/feed", lambda u=user_id: self.truth.feed(u), items=True)

    def check_read(self, worker, path, expected, items=False):
        before = tier_counts(worker.res.stats.counted())
        response = worker.client.get(path)
        after = tier_counts(worker.res.stats.counted())
        if response.status_code == 503:
            return  # the store is down for this worker and nothing cached could answer
        counted = sum(after) - sum(before)
        if counted != 1:
            self.violation("stats", f"{worker.name} GET {path}: counted {counted} times (l1, l2, l3: {before} -> {after})")
        want = expected()
        if want is None:
            if response.status_code != 404:
                self.violation("stale", f"{worker.name} GET {path}: {response.status_code}, but the store has nothing")
            return
        if response.status_code != 200:
            self.violation("stale", f"{worker.name} GET {path}: {response.status_code} {response.get_data(as_text=True)[:120]}, "
                                    f"but the store has it")
            return
        got = response.get_json()["items"] if items else response.get_json()
        if got != want:
            self.violation("stale", f"{worker.name} GET {path} [{response.headers.get('X-Cache')}]: "
                                    f"{_difference(got, want)}")

    def check_counters(self):
        errors = self.truth.counter_errors()
        if errors:
            self.violation("counters", f"{errors[:3]}")

    def settle_all(self):
        for worker in self.workers:
            settle(worker)

    # --- steps --------------------------------------------------------------------------------

    def step_write(self):
        touched = self.random_write(self._worker())
        self.check(touched)
        self.check_counters()

    def step_read(self):
        worker, user = self._worker(), self._user()
        self.note(f"{worker.name} reads around {user.username}")
        self.check({"profiles": [user.id], "feeds": [user.id], "timelines": [user.id]}, [worker])

    def step_blip(self):
        """One worker loses Redis for 0.3 s and writes meanwhile; the others stay subscribed."""
        worker = self._worker()
        worker.proxy.cut(0.3)
        self.note(f"{worker.name} cut off from Redis for 0.3 s")
        touched = self.random_write(worker)
        self.check(touched, [w for w in self.workers if w is not worker])
        _wait_until(lambda: not worker.proxy.is_cut, 2)
        self.check(touched)

    def step_slow_listener(self):
        """One worker's listener hears nothing for a while; another worker writes."""
        slow = self._worker()
        writer = self.rng.choice([w for w in self.workers if w is not slow])
        seconds = self.rng.choice([0.6, 1.0, 1.5])
        slow.proxy.freeze_subscribers(seconds)
        self.note(f"{slow.name}'s listener frozen for {seconds} s")
        touched = self.random_write(writer)
        self.check(touched)
        time.sleep(seconds)
        self.check(touched)

    def step_store_down(self):
        worker = self._worker()
        worker.faults.down()
        self.note(f"{worker.name}: store unreachable")
        touched = self.random_write(worker)
        worker.faults.heal()
        self.check(touched)
        self.check_counters()

    def step_store_fails_after_commit(self):
        worker = self._worker()
        worker.faults.fail_after_next_write()
        self.note(f"{worker.name}: store fails after the next commit")
        touched = self.random_write(worker)
        worker.faults.heal()
        self.settle_all()  # the store answers again: each worker's next maintenance tick
        self.check(touched)
        self.check_counters()

    def step_lost_reply_then_retry(self):
        """A write whose reply is lost (it was applied), retried on another worker."""
        first, second = self._worker(), self._worker()
        first.faults.ambiguous_next_write()
        kind = self.rng.choice(["follow", "unfollow", "like", "unlike", "profile"])
        state = self.rng.getstate()
        self.note(f"{first.name}: the next write's reply is lost; retried on {second.name}")
        getattr(self, "write_" + kind)(first)
        first.faults.heal()
        self.rng.setstate(state)  # the same request again
        touched = getattr(self, "write_" + kind)(second)
        self.settle_all()
        self.check(touched)
        self.check_counters()

    def step_lost_reply(self):
        """A write whose reply is lost (it was applied) and that nobody retries."""
        worker = self._worker()
        worker.faults.ambiguous_next_write()
        self.note(f"{worker.name}: the next write's reply is lost")
        touched = self.random_write(worker)
        worker.faults.heal()
        self.settle_all()
        self.check(touched)
        self.check_counters()

    def step_ttl(self):
        worker = self._worker()
        worker.clock.skip(61)
        self.note(f"{worker.name}: L1 clock moved 61 s on")
        self.step_read()

    def step_unfollow_races_post(self):
        """a unfollows b while b posts and a's feed is read meanwhile; then a's feed shows
        nothing of b's on any worker."""
        a = self._user()
        b = self._user(not_=a)
        workers = self.rng.sample(self.workers, 3) if len(self.workers) >= 3 else self.workers * 2
        self._write(workers[0], "POST", f"/api/users/{b.id}/follow", a)
        self.check({"feeds": [a.id]})
        failing = self.rng.choice([None, workers[0], workers[1]])
        if failing is not None:
            failing.faults.fail_after_next_write()
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                workers[2].client.get(f"/api/users/{a.id}/feed")

        with ThreadPoolExecutor(3) as pool:
            reading = pool.submit(reader)
            posting = pool.submit(self._write, workers[1], "POST", "/api/posts", b, {"content": "racing"})
            unfollowing = pool.submit(self._write, workers[0], "DELETE", f"/api/users/{b.id}/follow", a)
            posting.result(), unfollowing.result()
            stop.set()
            reading.result()
        self.note(f"{a.username} unfollowed {b.username} while {b.username} posted"
                  + (f" ({failing.name}'s store failed after a commit)" if failing else ""))
        if failing is not None:
            failing.faults.heal()
            self.settle_all()
        self.check({"feeds": [a.id], "profiles": [a.id, b.id]})
        self.check_counters()

    def step_predicted_id(self):
        """Ask for the id the next user will get before registering them."""
        worker = self._worker()
        probe = ObjectId()
        predicted = ObjectId(probe.binary[:9] + (int.from_bytes(probe.binary[9:], "big") + 1).to_bytes(3, "big"))
        for w in self.workers:
            w.client.get(f"/api/users/{predicted}")
        user = self._register(worker)
        self.users.append(user)
        self.note(f"{worker.name} registered {user.username} ({'the predicted id' if user.id == str(predicted) else 'another id'})")
        self.check({"profiles": [user.id]})

    def step_concurrent_reads(self):
        """Several threads read one cold key on one worker while another worker writes it."""
        reader_worker, writer = self._worker(), self._worker()
        user = self._user()
        reader_worker.res.cache.local.evict([reader_worker.res.keys.profile(user.id)]) \
            if getattr(reader_worker.res.cache, "local", None) else None
        with ThreadPoolExecutor(4) as pool:
            reads = [pool.submit(reader_worker.client.get, f"/api/users/{user.id}") for _ in range(6)]
            self._write(writer, "PATCH", "/api/me", user, {"bio": f"bio {self.rng.randrange(10**9)}"})
            for read in reads:
                read.result()
        self.note(f"{reader_worker.name} read {user.username} 6 times while {writer.name} wrote it")
        self.check({"profiles": [user.id]})


STEPS = {
    "write": 30,
    "read": 10,
    "blip": 6,
    "slow_listener": 4,
    "store_down": 3,
    "store_fails_after_commit": 5,
    "lost_reply_then_retry": 5,
    "lost_reply": 3,
    "ttl": 3,
    "unfollow_races_post": 5,
    "predicted_id": 3,
    "concurrent_reads": 4,
}


def _wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def _difference(got, want) -> str:
    if isinstance(got, list) and isinstance(want, list):
        got_ids, want_ids = [i.get("id") for i in got], [i.get("id") for i in want]
        if got_ids != want_ids:
            return f"ids {got_ids[:5]}... != store {want_ids[:5]}..."
        for g, w in zip(got, want):
            if g != w:
                return _difference(g, w)
    if isinstance(got, dict) and isinstance(want, dict):
        fields = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        return ", ".join(f"{k}: {got.get(k)!r} != store {want.get(k)!r}" for k in fields)
    return f"{got!r} != store {want!r}"
