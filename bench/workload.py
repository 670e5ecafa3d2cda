"""Request lists for wrk (Zipf-distributed keys), logins, and the stale-read probe.

Users are ranked by followers (most followed first) and a read picks rank r with probability
proportional to 1 / r^s (s = 1.1), so the hot 1 % of users gets most reads.
Each list is written one request a line (METHOD, path, bearer token or "-", JSON body,
separated by tabs) for bench/requests.lua, which cycles through it.
"""
import bisect
import itertools
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

ZIPF_S = 1.1
READ_MIX = (("profile", 40), ("feed", 30), ("timeline", 20), ("post", 10))
WRITE_MIX = (("post", 4), ("like", 3), ("profile_edit", 2), ("follow", 1))  # of 100 requests


class Zipf:
    """Draws ranks 0..n-1 with P(r) ∝ 1 / (r + 1)^s."""

    def __init__(self, n, s=ZIPF_S, rng=None):
        self.cumulative = list(itertools.accumulate(1.0 / (r + 1) ** s for r in range(n)))
        self.rng = rng or random.Random(6)

    def draw(self) -> int:
        return bisect.bisect_left(self.cumulative, self.rng.random() * self.cumulative[-1])


def _pick(rng, weighted):
    point = rng.randrange(sum(w for _, w in weighted))
    for name, weight in weighted:
        point -= weight
        if point < 0:
            return name
    raise AssertionError("unreachable")


class Workloads:
    """The request lists of one dataset: `users` ranked most followed first, hot `posts`."""

    def __init__(self, users, posts, length=20_000, seed=6):
        self.users, self.posts, self.length = users, posts, length
        self.rng = random.Random(seed)
        self.user_zipf = Zipf(len(users), rng=self.rng)
        self.post_zipf = Zipf(len(posts), rng=self.rng)

    def _user(self):
        return self.users[self.user_zipf.draw()]

    def _read(self, kind):
        if kind == "profile":
            return ("GET", f"/api/users/{self._user()}", "-", "")
        if kind == "feed":
            return ("GET", f"/api/users/{self._user()}/feed", "-", "")
        if kind == "timeline":
            return ("GET", f"/api/users/{self._user()}/posts", "-", "")
        return ("GET", f"/api/posts/{self.posts[self.post_zipf.draw()]}", "-", "")

    def _write(self, kind, token, n):
        if kind == "post":
            return ("POST", "/api/posts", token, json.dumps({"content": f"bench post {n}"}))
        if kind == "like":
            return ("POST", f"/api/posts/{self.posts[self.post_zipf.draw()]}/like", token, "")
        if kind == "profile_edit":
            return ("PATCH", "/api/me", token, json.dumps({"bio": f"bench bio {n}"}))
        return ("POST", f"/api/users/{self._user()}/follow", token, "")

    def lines(self, workload, tokens=()) -> list:
        """The request list of `workload`: profile, feed, read_mix or mix_90_10 (needs tokens)."""
        out = []
        for n in range(self.length):
            if workload in ("profile", "feed"):
                out.append(self._read(workload))
            elif workload == "read_mix" or self.rng.randrange(100) >= sum(w for _, w in WRITE_MIX):
                out.append(self._read(_pick(self.rng, READ_MIX)))
            else:
                out.append(self._write(_pick(self.rng, WRITE_MIX), tokens[n % len(tokens)], n))
        return out

    @staticmethod
    def write(lines, path):
        with open(path, "w") as f:
            for line in lines:
                f.write("\t".join(line) + "\n")


def login_all(base, usernames, password, threads=4) -> list:
    """Access tokens of `usernames` (logged in concurrently)."""
    def one(name):
        response = requests.post(f"{base}/api/auth/login", json={"username": name, "password": password}, timeout=60)
        response.raise_for_status()
        return response.json()["access_token"]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, usernames))


class StaleProbe:
    """The history check of tests/e2e/test_history.py, run beside the load.

    One writer PATCHes the probe user's display_name to "p0", "p1", ... every `pause` seconds;
    `readers` threads GET the profile on fresh connections (so they reach every worker) and
    record when each read started and what it saw. A read that started after write k returned
    but shows a version older than k is a stale read (API.md: "Once it returns, no worker
    serves the old profile").
    """

    def __init__(self, base, user_id, token, readers=2, pause=0.25):
        self.base, self.user_id, self.token = base, user_id, token
        self.readers, self.pause = readers, pause
        self.reads, self.returns, self.errors = [], [], []
        self._stop = threading.Event()
        self._threads = []

    @staticmethod
    def _version(name):
        return int(name[1:]) if name.startswith("p") and name[1:].isdigit() else -1

    def _read_forever(self):
        mine = []
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                r = requests.get(f"{self.base}/api/users/{self.user_id}", headers={"Connection": "close"}, timeout=30)
                mine.append((start, self._version(r.json()["display_name"])))
            except Exception as err:  # noqa: BLE001 - counted and reported
                self.errors.append(repr(err))
            time.sleep(0.01)
        self.reads.extend(mine)

    def _write_forever(self):
        k = 0
        while not self._stop.is_set():
            try:
                r = requests.patch(f"{self.base}/api/me", json={"display_name": f"p{k}"}, timeout=30,
                                   headers={"Authorization": f"Bearer {self.token}", "Connection": "close"})
                r.raise_for_status()
                self.returns.append(time.perf_counter())
                k += 1
            except Exception as err:  # noqa: BLE001
                self.errors.append(repr(err))
            self._stop.wait(self.pause)

    def __enter__(self):
        self._threads = [threading.Thread(target=self._read_forever, daemon=True) for _ in range(self.readers)]
        self._threads.append(threading.Thread(target=self._write_forever, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(35)

    def result(self) -> dict:
        """reads, writes, stale reads and the largest staleness (ms after the owed write)."""
        stale, worst = 0, 0.0
        for start, value in self.reads:
            owed = bisect.bisect_left(self.returns, start) - 1
            if value < owed:
                stale += 1
                worst = max(worst, (start - self.returns[value + 1]) * 1000)
        return {"reads": len(self.reads), "writes": len(self.returns), "stale": stale,
                "worst_ms": round(worst, 1), "errors": len(self.errors)}
