"""Steady read/write traffic against a deployment, recorded for the fault tests.

One writer PATCHes a watched user's display_name ("v0", "v1", ...) and records when each write
returned; readers GET that profile (and other profiles and posts, to keep the tiers busy) on
fresh connections and record start, end, status, value, X-Cache and X-Worker. `report()`
answers the fault tests' questions: how many 5xx, how stale the freshest-owed reads were
(a read that started after write k returned must show k or newer), latency percentiles in a
time window, and when the caches took over again after a fault.
"""
import bisect
import statistics
import threading
import time
from collections import Counter

import requests

from .support import fresh, writes_to


def version(display_name: str) -> int:
    return int(display_name[1:]) if display_name.startswith("v") else -1


class Traffic:
    def __init__(self, dep, watched_id, headers, other_paths=(), readers=6, write_pause=0.05,
                 max_seconds=120.0):
        self.dep = dep
        self.watched = f"/api/users/{watched_id}"
        self.headers = headers
        self.other_paths = list(other_paths)
        self.readers = readers
        self.write_pause = write_pause
        self.max_seconds = max_seconds
        self.reads, self.writes, self.write_errors = [], [], []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._writes_stopped = threading.Event()
        self._write_lock = threading.Lock()
        self._threads = []

    # --- running ----------------------------------------------------------------------------

    def __enter__(self):
        self.started = time.perf_counter()
        self._threads = [threading.Thread(target=self._reader, args=(n,), daemon=True) for n in range(self.readers)]
        self._threads.append(threading.Thread(target=self._writer, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _running(self):
        return not self._stop.is_set() and time.perf_counter() - self.started < self.max_seconds

    def _reader(self, n):
        mine, i = [], n
        while self._running():
            watched = i % 2 == 0 or not self.other_paths
            path = self.watched if watched else self.other_paths[i % len(self.other_paths)]
            i += 1
            start = time.perf_counter()
            try:
                response = fresh("GET", self.dep.url(path), timeout=10)
                status, body = response.status_code, response.json()
            except (requests.RequestException, ValueError) as err:
                status, body, response = f"error: {err!r}", None, None
            end = time.perf_counter()
            mine.append({
                "path": path, "start": start, "end": end, "status": status,
                "value": version(body["display_name"]) if watched and status == 200 else None,
                "tier": response.headers.get("X-Cache") if response is not None else None,
                "worker": response.headers.get("X-Worker") if response is not None else None,
            })
        with self._lock:
            self.reads.extend(mine)

    def stop_writing(self):
        """Return once no write is in flight and none will start (readers go on)."""
        self._writes_stopped.set()
        with self._write_lock:
            pass

    def _writer(self):
        k = 0
        while self._running():
            with self._write_lock:
                if self._writes_stopped.is_set():
                    return
                k = self._write(k)
            time.sleep(self.write_pause)

    def _write(self, k) -> int:
        """PATCH display_name v<k>; the next k."""
        start = time.perf_counter()
        try:
            response = fresh("PATCH", writes_to(self.dep).url("/api/me"), headers=self.headers,
                             json={"display_name": f"v{k}"}, timeout=15)
        except requests.RequestException as err:
            self.write_errors.append(repr(err))
            return k
        if response.status_code != 200:
            self.write_errors.append(f"{response.status_code} {response.text[:200]}")
            return k
        self.writes.append({"k": k, "start": start, "returned": time.perf_counter()})
        return k + 1

    def mark(self) -> float:
        """A point in time on the traffic's clock (e.g. when a fault began)."""
        return time.perf_counter()

    # --- analysis ---------------------------------------------------------------------------

    def server_errors(self) -> list:
        """Reads answered 5xx or not answered at all (connection errors)."""
        return [r for r in self.reads if not isinstance(r["status"], int) or r["status"] >= 500]

    def count_5xx(self) -> int:
        return sum(isinstance(r["status"], int) and r["status"] >= 500 for r in self.reads)

    def count_connection_errors(self) -> int:
        return sum(not isinstance(r["status"], int) for r in self.reads)

    def staleness(self) -> dict:
        """Reads of the watched profile that showed a value older than the newest write that
        had returned before they started; the largest such lag in ms (0: none)."""
        writes = sorted(self.writes, key=lambda w: w["k"])
        returns = [w["returned"] for w in writes]
        stale, largest = 0, 0.0
        for read in self.reads:
            if read["value"] is None:
                continue
            owed = bisect.bisect_left(returns, read["start"]) - 1
            if read["value"] < owed:
                stale += 1
                # how long after the first newer write returned this read still began
                largest = max(largest, (read["start"] - returns[read["value"] + 1]) * 1000)
        return {"stale_reads": stale, "largest_staleness_ms": round(largest, 1)}

    def latency_ms(self, since=None, until=None) -> dict:
        times = sorted((r["end"] - r["start"]) * 1000 for r in self.reads
                       if (since is None or r["start"] >= since) and (until is None or r["start"] < until))
        if not times:
            return {"reads": 0}
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        return {"reads": len(times), "p50": round(statistics.median(times), 1), "p99": round(p99, 1),
                "max": round(times[-1], 1)}

    def recovered_after(self, since, window=0.5, ratio=0.9) -> float | None:
        """Seconds from `since` until the first `window` in which at least `ratio` of the
        answered reads came from L1 or L2 (the caches took over again); None if never."""
        reads = sorted((r for r in self.reads if r["start"] >= since and r["status"] == 200), key=lambda r: r["start"])
        start = since
        while reads and start < reads[-1]["start"]:
            tiers = Counter(r["tier"] for r in reads if start <= r["start"] < start + window)
            total = sum(tiers.values())
            if total >= 5 and (tiers["L1"] + tiers["L2"]) / total >= ratio:
                return round(start - since, 2)
            start += window / 5
        return None

    def tiers(self, since=None, until=None) -> dict:
        return dict(Counter(r["tier"] for r in self.reads
                            if (since is None or r["start"] >= since) and (until is None or r["start"] < until)))
