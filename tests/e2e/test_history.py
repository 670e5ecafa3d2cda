"""End to end, 4 gunicorn workers: a recorded history of profile edits and concurrent reads.

One writer PATCHes a display_name 50 times ("v0".."v49") while 8 readers GET the profile on
fresh connections without pause. Every read records when it started and ended, the value it
saw, X-Cache and X-Worker; every write records when it returned. The check: no read that
started after write k returned shows a value older than k (API.md: "Once it returns, no
worker serves the old profile"). The tier shares and the staleness figures are printed and
written to history.json in the test's tmp dir.
"""
import bisect
import json
import threading
import time
from collections import Counter

import pytest

from .deployment import Deployment
from .support import fresh, register_and_login

WORKERS = 4
WRITES = 50
READERS = 8
WRITE_PAUSE = 0.03  # between writes, so reads of every version get a chance
TAIL = 0.3  # readers keep reading this long after the last write
MAX_SECONDS = 40


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    with Deployment(tmp_path_factory.mktemp("history") / "var", workers=WORKERS) as running:
        yield running


def version(display_name: str) -> int:
    """v<k> -> k; the initial name (before any write) -> -1."""
    return int(display_name[1:]) if display_name.startswith("v") else -1


def record_history(dep, user_id, headers):
    reads, writes, errors = [], [], []
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + MAX_SECONDS

    def reader():
        mine = []
        while not stop.is_set() and time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                response = fresh("GET", dep.url(f"/api/users/{user_id}"))
            except Exception as err:  # noqa: BLE001 - recorded, then the test fails on it
                errors.append(repr(err))
                continue
            end = time.perf_counter()
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")
                continue
            mine.append({"start": start, "end": end, "value": version(response.json()["display_name"]),
                         "tier": response.headers.get("X-Cache"), "worker": response.headers.get("X-Worker")})
        with lock:
            reads.extend(mine)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # warm: every worker has the profile in L1 before the first write
    try:
        for k in range(WRITES):
            start = time.perf_counter()
            response = fresh("PATCH", dep.url("/api/me"), headers=headers, json={"display_name": f"v{k}"})
            returned = time.perf_counter()
            assert response.status_code == 200, response.text
            assert response.json()["display_name"] == f"v{k}"
            writes.append({"k": k, "start": start, "returned": returned, "worker": response.headers.get("X-Worker")})
            time.sleep(WRITE_PAUSE)
        time.sleep(TAIL)
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
    return sorted(reads, key=lambda r: r["start"]), writes, errors


def analyse(reads, writes) -> dict:
    returns = [w["returned"] for w in writes]  # increasing: one writer, one write at a time
    violations = []
    staleness_any = staleness_after = 0.0
    for read in reads:
        # The newest write that had returned before this read started: the read owes us >= k.
        owed = bisect.bisect_left(returns, read["start"]) - 1
        if read["value"] < owed:
            violations.append({**read, "owed": owed})
        # Staleness: how long after the first newer write returned this old value was still
        # being delivered (reads already in flight when that write returned included).
        newer = read["value"] + 1
        if newer < len(writes) and read["end"] > returns[newer]:
            late = (read["end"] - returns[newer]) * 1000
            staleness_any = max(staleness_any, late)
            if read["start"] > returns[newer]:
                staleness_after = max(staleness_after, late)
    tiers = Counter(r["tier"] for r in reads)
    return {
        "reads": len(reads),
        "writes": len(writes),
        "tier_shares": {tier: round(n / len(reads), 4) for tier, n in sorted(tiers.items())},
        "tier_counts": dict(sorted(tiers.items())),
        "reads_per_worker": dict(Counter(r["worker"] for r in reads)),
        "writes_per_worker": dict(Counter(w["worker"] for w in writes)),
        "violations": len(violations),
        # reads that started after a newer write had returned (the promise: none, so 0)
        "largest_staleness_ms": round(staleness_after, 3),
        # the same, counting reads that were already in flight when the newer write returned
        "largest_staleness_ms_including_in_flight_reads": round(staleness_any, 3),
        "write_latency_ms_max": round(max((w["returned"] - w["start"]) * 1000 for w in writes), 3),
        "versions_seen": len({r["value"] for r in reads}),
        "first_violations": [
            {"value": v["value"], "owed": v["owed"], "tier": v["tier"], "worker": v["worker"],
             "started_ms_after_owed_write_returned": round((v["start"] - returns[v["owed"]]) * 1000, 3)}
            for v in violations[:10]
        ],
    }


def test_no_read_after_a_write_returns_shows_an_older_profile(dep, tmp_path):
    user_id, headers = register_and_login(dep, "history_user", display_name="initial")
    reads, writes, errors = record_history(dep, user_id, headers)
    report = analyse(reads, writes)
    (tmp_path / "history.json").write_text(json.dumps(report, indent=2))
    print(f"\nhistory check ({tmp_path / 'history.json'}):\n{json.dumps(report, indent=2)}")

    assert not errors, errors[:10]
    assert len(writes) == WRITES
    assert len(report["reads_per_worker"]) == WORKERS, f"reads reached only {report['reads_per_worker']}"
    assert report["reads"] >= 10 * WRITES, "too few reads to say anything"
    assert report["tier_counts"].get("L1", 0) > 0, "L1 never served a read: nothing was tested"
    assert report["violations"] == 0, f"stale reads: {report['first_violations']}"
    assert report["largest_staleness_ms"] == 0
