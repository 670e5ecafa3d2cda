"""GET /dashboard in headless Chromium: the numbers the page shows are those of
/api/cache/stats, its charts draw live traffic, and its windowed percentiles follow the
server's rule. With DASHBOARD_SCREENSHOT=<path> the test also saves a screenshot taken
under load; docs/dashboard.png was made with
`DASHBOARD_SCREENSHOT=docs/dashboard.png DASHBOARD_POLLS=60 make test PYTEST_ARGS=tests/e2e/test_dashboard.py`."""
import json
import os
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from feedapp.observability.report import quantile

from .browser import headless_chromium
from .deployment import Deployment
from .support import Hammer, cache_stats, fresh, register_and_login

# These two move by themselves (TTL expiry of keys in Redis), so they are only checked shown.
DRIFTING = {"tiers.l2.keys", "tiers.l2.used_memory"}


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def lookup(body, path):
    node = body
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def polls(driver) -> int:
    return int(driver.find_element(By.ID, "polls").get_attribute("data-polls"))


def wait_for_polls(driver, count, timeout=20):
    WebDriverWait(driver, timeout).until(lambda d: polls(d) >= count)


def settled_stats(dep, timeout=15.0) -> dict:
    """/api/cache/stats once two reads 1.5 s apart agree (every worker flushed its counts)."""
    deadline = time.monotonic() + timeout
    before = cache_stats(dep)
    while time.monotonic() < deadline:
        time.sleep(1.5)
        now = cache_stats(dep)
        if comparable(now) == comparable(before):
            return now
        before = now
    raise AssertionError("stats did not settle")


def comparable(body):
    body = json.loads(json.dumps(body))
    body["tiers"]["l2"].pop("keys")
    body["tiers"]["l2"].pop("used_memory")
    return body


def shown(driver) -> dict:
    """{data-stat path: value} of every number on the page, read in one script run (the page
    re-renders on each poll, so element handles would go stale between reads)."""
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('[data-stat]')]"
        ".map((el) => [el.dataset.stat, el.dataset.value]));"
    )


def lines_per_chart(driver) -> dict:
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('svg[id^=chart-]')]"
        ".map((svg) => [svg.id, svg.querySelectorAll('polyline').length]));"
    )


def test_dashboard_matches_the_stats_of_four_workers(tmp_path, browser):
    env = {"SEED_ON_START": "1", "SEED_USERS": "60", "SEED_POSTS": "200"}
    with Deployment(tmp_path / "var", workers=4, env=env) as dep:
        authors = [p["author"]["id"] for p in fresh("GET", dep.url("/api/posts?page_size=20")).json()["items"]]
        _, headers = register_and_login(dep, "dashboard_writer")
        targets = [(f"/api/users/{a}", {}) for a in authors] + [("/api/posts?page_size=5", {})]
        browser.get(dep.url("/dashboard?interval=500"))
        assert browser.title == "feedapp · caches"
        with Hammer(dep, targets, threads=6) as hammer:
            for n in range(10):  # writes publish invalidations that every worker receives
                response = fresh("POST", dep.url("/api/posts"), json={"content": f"post {n}"}, headers=headers)
                assert response.status_code == 201
                time.sleep(0.3)
            # A longer run (DASHBOARD_POLLS) draws fuller charts for the screenshot in docs/.
            wait_for_polls(browser, int(os.environ.get("DASHBOARD_POLLS", 8)), timeout=60)
            charts = lines_per_chart(browser)
            if os.environ.get("DASHBOARD_SCREENSHOT"):
                browser.save_screenshot(os.environ["DASHBOARD_SCREENSHOT"])
        assert not hammer.failures
        assert len(charts) == 4 and all(charts.values()), charts
        assert float(browser.find_element(By.ID, "rate").text) > 0  # live traffic was drawn

        body = settled_stats(dep)
        wait_for_polls(browser, polls(browser) + 2)  # the page polled after the stats settled
        on_page = shown(browser)
        body_now = cache_stats(dep)
        assert comparable(body_now) == comparable(body)  # nothing moved while the page looked

        assert body["workers"] == 4 and body["requests"]["total"] > 100
        assert body["invalidations"]["published"] >= 10 and body["invalidations"]["received"] >= 10
        expected_paths = {
            "workers", "hit_ratio", "requests.total", "requests.l1", "requests.l2", "requests.l3",
            "tiers.l1.hits", "tiers.l1.misses", "tiers.l1.size", "tiers.l1.maxsize", "tiers.l1.fills",
            "tiers.l2.hits", "tiers.l2.misses", "tiers.l2.fills", "tiers.l2.lease_waits", "tiers.l3.reads",
            "latency_ms.p50", "latency_ms.p90", "latency_ms.p99",
            "invalidations.published", "invalidations.received", "invalidations.lease_waits",
            *(f"per_worker.{i}.l1_size" for i in range(4)),
        } | DRIFTING
        assert set(on_page) == expected_paths
        for path, value in on_page.items():
            if path in DRIFTING:
                assert value not in ("", None), path
            else:
                assert json.loads(value) == lookup(body, path), path
        shown_ratio = browser.find_element(By.CSS_SELECTOR, '[data-stat="hit_ratio"]').text
        assert shown_ratio == f"{100 * body['hit_ratio']:.1f} %"


def test_the_pages_quantile_is_the_servers(tmp_path, browser):
    cases = [
        [(0.25, 0), (0.5, 10), (1.0, 30), (2.0, 5), (float("inf"), 1)],
        [(0.25, 3), (0.5, 0), (1.0, 0), (float("inf"), 0)],
        [(0.25, 0), (0.5, 0), (float("inf"), 7)],
        [(0.25, 0), (0.5, 0)],
    ]
    with Deployment(tmp_path / "var", workers=1, env={"WARM_ON_START": "0"}) as dep:
        browser.get(dep.url("/dashboard"))
        # The script may still be running when get() returns on a loaded machine.
        WebDriverWait(browser, 20).until(lambda d: d.execute_script("return !!window.feedappDashboard"))
        for buckets in cases:
            js = [[b if b != float("inf") else "Infinity", n] for b, n in buckets]
            for q in (0.5, 0.9, 0.99):
                got = browser.execute_script(
                    "const b = arguments[0].map(([x, n]) => [x === 'Infinity' ? Infinity : x, n]);"
                    "return window.feedappDashboard.quantile(b, arguments[1]);", js, q)
                assert got == quantile(buckets, q), (buckets, q)
