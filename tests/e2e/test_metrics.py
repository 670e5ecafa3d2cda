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
