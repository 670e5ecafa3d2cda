"""/metrics under gunicorn: samples of every worker merged, and kept when a worker dies."""
import os
import signal
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from .deployment import Deployment


def healthz_count(dep) -> float:
    text = requests.get(dep.url("/metrics"), timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "feedapp_request_seconds":
            return sum(s.value for s in family.samples
                       if s.name.endswith("_count") and s.labels["route"] == "/healthz")
    return 0.0


def test_request_histograms_sum_every_worker_and_survive_a_killed_worker(tmp_path):
    with Deployment(tmp_path / "var", workers=4, env={"WARM_ON_START": "0"}) as dep:
        base = healthz_count(dep)
        workers = set()
        for _ in range(120):
            response = requests.get(dep.url("/healthz"), headers={"Connection": "close"}, timeout=5)
            workers.add(int(response.headers["X-Worker"]))
        assert len(workers) == 4
        assert healthz_count(dep) == base + 120
        os.kill(min(workers), signal.SIGKILL)  # gunicorn replaces it; its counts must stay
        time.sleep(2)
        assert healthz_count(dep) >= base + 120


def metric_samples(dep) -> dict:
    text = requests.get(dep.url("/metrics"), timeout=5).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_metrics_show_each_workers_listener_breaker_and_l1_and_latency_per_family(tmp_path):
    env = {"SEED_ON_START": "1", "SEED_USERS": "20", "SEED_POSTS": "40", "WARM_ON_START": "0"}
    with Deployment(tmp_path / "var", workers=4, env=env) as dep:
        author = requests.get(dep.url("/api/posts?page_size=1"), timeout=5).json()["items"][0]["author"]["id"]
        for _ in range(40):
            response = requests.get(dep.url(f"/api/users/{author}"), headers={"Connection": "close"}, timeout=5)
            assert response.status_code == 200
        time.sleep(2.5)  # every worker sends its heartbeat (with its gauges) once a second
        samples = metric_samples(dep)
        live = {s.labels["worker"]: s.value for s in samples["feedapp_listener_live"]}
        assert len(live) == 4 and set(live.values()) == {1.0}
        assert {s.value for s in samples["feedapp_breaker_open"]} == {0.0}
        assert len(samples["feedapp_l1_maxsize"]) == 4
        assert sum(s.value for s in samples["feedapp_l1_entries"]) >= 1
        profile_reads = [s for s in samples["feedapp_request_seconds"]
                         if s.name.endswith("_count") and s.labels.get("family") == "profile"]
        assert sum(s.value for s in profile_reads) == 40
        assert {s.labels["tier"] for s in profile_reads} <= {"L1", "L2", "L3"}
        events = {s.labels["event"]: s.value for s in samples["feedapp_events"]}
        assert events["l2.fills"] >= 1 and events["l1.fills"] >= 1
