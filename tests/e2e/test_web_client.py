"""The web client in headless Chromium against gunicorn with 4 workers and the demo data: what a
person does (sign up, sign in, post, follow, like, page on, sign out) and what the client does
for them (refresh an expired token, re-read with If-None-Match, say what went wrong)."""
import base64
import json
import re
import time

import pytest
from selenium.webdriver.common.by import By

from .browser import headless_chromium
from .deployment import Deployment
from .support import PASSWORD, fresh, register_and_login
from .webclient import (
    POSTS,
    click,
    fill,
    open_signed_out,
    post_ids,
    shown,
    sign_in,
    sign_up,
    tokens,
    wait,
)

DEMO = "demo1_00000"
ERROR_CODES = [  # API.md, "Conventions"; plus "network" (no answer at all)
    "invalid_json", "validation_error", "invalid_id", "unauthorized", "forbidden", "not_found", "conflict",
    "payload_too_large", "method_not_allowed", "too_many_requests", "idempotency_mismatch", "service_unavailable",
    "network",
]
# Wraps fetch to keep what the client sent: the page's own requests, headers included.
RECORD_FETCH = """
window.sentRequests = [];
const original = window.fetch;
window.fetch = (url, options = {}) => {
  window.sentRequests.push({url: String(url), method: options.method, headers: options.headers || {}});
  return original(url, options);
};
"""


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    env = {"SEED_ON_START": "1", "LOGIN_ACCOUNT_LIMIT": "3"}
    with Deployment(tmp_path_factory.mktemp("web") / "var", workers=4, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(1280, 900)
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def no_page_errors(browser):
    """No script error and nothing the Content-Security-Policy refused, in any test."""
    browser.get_log("browser")  # what earlier tests left
    yield
    problems = [e["message"] for e in browser.get_log("browser")
                if "Content Security Policy" in e["message"] or "Uncaught" in e["message"]]
    assert problems == []


def api_json(dep, path, headers=None):
    response = fresh("GET", dep.url(path), headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def user(dep, username) -> dict:
    return api_json(dep, f"/api/users/by-username/{username}")


def requests_log(browser) -> list:
    """The footer's list of the last requests, newest first."""
    return browser.execute_script(
        "return [...document.querySelectorAll('[data-testid=requests] li')].map((li) => ({...li.dataset}));")


def article(browser, post_id):
    return browser.find_element(By.CSS_SELECTOR, f'{POSTS}[data-post-id="{post_id}"]')


def like_count(browser, post_id) -> int:
    return int(article(browser, post_id).find_element(By.CSS_SELECTOR, "button[data-testid=like]").get_attribute("data-count"))


def form_error(browser, form) -> str:
    return wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, f"form[data-testid={form}] .form-error").text)


def click_nav(browser, text):
    browser.find_element(By.LINK_TEXT, text).click()


def test_sign_up_then_a_post_appears_first_with_an_idempotency_key(dep, browser):
    sign_up(browser, dep, "web_writer")
    assert browser.find_element(By.CSS_SELECTOR, ".list .empty").is_displayed()  # follows no one yet
    browser.execute_script(RECORD_FETCH)
    for text in ("first words from the browser", "second words from the browser"):
        fill(browser.find_element(By.CSS_SELECTOR, "form[data-testid=compose]"), content=text)
        wait(browser, lambda b, t=text: b.find_elements(By.CSS_SELECTOR, POSTS)
             and b.find_element(By.CSS_SELECTOR, f"{POSTS} .content").text == t)
    assert browser.find_element(By.NAME, "content").get_attribute("value") == ""
    sent = [r for r in browser.execute_script("return window.sentRequests;") if r["method"] == "POST"]
    keys = [r["headers"].get("Idempotency-Key", "") for r in sent]
    assert len(keys) == 2 and len(set(keys)) == 2, sent
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key) for key in keys), keys

    click_nav(browser, "Profile")  # the author's own timeline, read from the API
    wait(browser, lambda b: b.current_url.endswith("/u/web_writer") and len(post_ids(b)) == 2)
    first = article(browser, post_ids(browser)[0])
    assert first.find_element(By.CSS_SELECTOR, ".content").text == "second words from the browser"
    assert "@web_writer" in first.text
    assert browser.find_element(By.CSS_SELECTOR, '[data-count="posts_count"]').text == "2"


def test_sign_up_with_a_taken_name_says_so(dep, browser):
    register_and_login(dep, "web_taken")
    open_signed_out(browser, dep)
    fill(wait(browser, shown("form[data-testid=register]")),
         username="web_taken", email="someone.else@example.com", password=PASSWORD)
    message = form_error(browser, "register")
    assert "username is already taken" in message and "Choose another one" in message
    assert tokens(browser) is None


def test_follow_from_a_profile_then_the_authors_posts_are_in_the_feed(dep, browser):
    author = next(u for u in (user(dep, f"demo1_{i:05d}") for i in range(10, 60)) if 3 <= u["posts_count"] <= 20)
    sign_up(browser, dep, "web_follower")
    browser.get(dep.url(f"/u/{author['username']}"))
    follow = wait(browser, shown("button[data-testid=follow]"))
    assert follow.text == "Follow" and follow.get_attribute("aria-pressed") == "false"
    followers = author["followers_count"]
    click(browser, follow)
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "button[data-testid=follow]").text == "Unfollow")
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-count="followers_count"]').text == str(followers + 1))

    click_nav(browser, "Home")
    timeline = [p["id"] for p in api_json(dep, f"/api/users/{author['id']}/posts?limit=100")["items"]]
    wait(browser, lambda b: post_ids(b) == timeline, message="the feed does not show the author's posts")
    assert {a.find_element(By.CSS_SELECTOR, ".handle").text for a in browser.find_elements(By.CSS_SELECTOR, POSTS)} \
        == {f"@{author['username']}"}

    browser.get(dep.url(f"/u/{author['username']}"))  # a new page: the follow state read from the API
    assert wait(browser, shown("button[data-testid=follow]")).text == "Unfollow"


def test_like_and_unlike_change_the_count(dep, browser):
    sign_in(browser, dep, "demo1_00001")
    post_id = post_ids(browser)[0]
    before = api_json(dep, f"/api/posts/{post_id}")["likes_count"]
    assert like_count(browser, post_id) == before
    click(browser, article(browser, post_id).find_element(By.CSS_SELECTOR, "button[data-testid=like]"))
    wait(browser, lambda b: like_count(b, post_id) == before + 1)
    button = article(browser, post_id).find_element(By.CSS_SELECTOR, "button[data-testid=like]")
    assert button.get_attribute("aria-pressed") == "true"
    assert api_json(dep, f"/api/posts/{post_id}")["likes_count"] == before + 1
    click(browser, button)
    wait(browser, lambda b: like_count(b, post_id) == before)
    assert api_json(dep, f"/api/posts/{post_id}")["likes_count"] == before


def test_more_pages_on_without_repeats_and_rereads_are_conditional(dep, browser):
    me = user(dep, DEMO)
    expected, cursor = [], None
    while len(expected) < 60:
        page = api_json(dep, f"/api/users/{me['id']}/feed?limit=20" + (f"&before={cursor}" if cursor else ""))
        expected += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(expected) > 40, "the demo user's feed needs three pages for this test"

    sign_in(browser, dep, DEMO)
    counts = (20, 40, min(60, len(expected)))
    for n, count in enumerate(counts):
        if n:
            click(browser, browser.find_element(By.CSS_SELECTOR, "button[data-testid=more]"))
        wait(browser, lambda b, c=count: len(post_ids(b)) == c)
        assert post_ids(browser) == expected[:count]  # in order, none twice, none skipped

    click_nav(browser, "Explore")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, POSTS))
    click_nav(browser, "Home")
    wait(browser, lambda b: len(post_ids(b)) == 20)
    reread = next(r for r in requests_log(browser) if r["path"] == "/api/feed?limit=20")
    assert reread["status"] == "304" and reread["tier"] in ("L1", "L2", "L3")
    assert post_ids(browser) == expected[:20]  # the remembered body


def test_the_footer_shows_tier_and_latency_of_the_last_requests(dep, browser):
    browser.get(dep.url("/explore"))
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, POSTS))
    last = browser.find_element(By.ID, "last-request").text
    assert re.fullmatch(r"L[123] (200|304) · \d+ ms · GET /api/posts\?sort=recent&page=1&page_size=20", last), last
    toggle = browser.find_element(By.ID, "requests-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert browser.find_element(By.CSS_SELECTOR, "[data-testid=requests]").is_displayed()
    entries = requests_log(browser)
    assert entries and all(float(e["ms"]) >= 0 for e in entries)
    toggle.click()


def test_explore_searches(dep, browser):
    browser.get(dep.url("/explore"))
    form = wait(browser, shown("form[role=search]"))
    fill(form, q="coffee")
    wait(browser, lambda b: "q=coffee" in b.current_url and post_ids(b))
    contents = [e.text.lower() for e in browser.find_elements(By.CSS_SELECTOR, f"{POSTS} .content")]
    assert contents and all("coffee" in c for c in contents)
    expected = [p["id"] for p in api_json(dep, "/api/posts?q=coffee&sort=recent&page=1&page_size=20")["items"]]
    assert post_ids(browser) == expected


def test_sign_out_ends_the_session_on_the_server_too(dep, browser):
    sign_in(browser, dep, "demo1_00002")
    access = tokens(browser)["access_token"]
    browser.find_element(By.CSS_SELECTOR, "[data-testid=signout]").click()
    wait(browser, shown("form[data-testid=login]"))
    assert tokens(browser) is None
    assert not browser.find_element(By.CSS_SELECTOR, "[data-testid=signout]").is_displayed()
    assert fresh("GET", dep.url("/api/me"), headers={"Authorization": f"Bearer {access}"}).status_code == 401


def test_a_session_ended_elsewhere_brings_back_the_sign_in_form(dep, browser):
    sign_in(browser, dep, "demo1_00003")
    access = tokens(browser)["access_token"]
    assert fresh("POST", dep.url("/api/auth/logout"), headers={"Authorization": f"Bearer {access}"}).status_code == 200
    post_id = post_ids(browser)[0]
    click(browser, article(browser, post_id).find_element(By.CSS_SELECTOR, "button[data-testid=like]"))
    wait(browser, shown("form[data-testid=login]"))
    assert "Your session has ended" in browser.find_element(By.ID, "notice").text
    log = requests_log(browser)
    assert any(r["path"] == "/api/auth/refresh" and r["status"] == "401" for r in log), log


def test_wrong_passwords_then_429_with_its_wait(dep, browser):
    register_and_login(dep, "web_locked")
    open_signed_out(browser, dep)
    form = wait(browser, shown("form[data-testid=login]"))
    for _ in range(3):
        fill(form, username="web_locked", password="not the password")
        assert form_error(browser, "login") == "Invalid username or password."
        browser.execute_script("document.querySelector('form[data-testid=login] .form-error').textContent = '';")
    fill(form, username="web_locked", password="not the password")
    assert re.fullmatch(r"Too many failed attempts\. Try again in \d+ min\.", form_error(browser, "login"))


def test_every_error_code_has_its_own_message(dep, browser):
    browser.get(dep.url("/"))
    messages = browser.execute_async_script("""
        const [codes, done] = arguments;
        import('/static/web/messages.js').then(({describe}) => done(Object.fromEntries(codes.map((code) =>
          [code, describe({code, status: 400, message: 'The server said so', details: {content: ['Too long.']},
                           retryAfter: 7, authenticated: true}, 'Posting')]))));
    """, ERROR_CODES)
    generic = {code: m for code, m in messages.items() if m.startswith("Posting failed (HTTP")}
    assert not generic, generic  # each code is explained, not just echoed
    assert messages["too_many_requests"] == "Too many failed attempts. Try again in 7 s."
    assert messages["service_unavailable"].endswith("Try again in 7 s.")
    assert messages["validation_error"] == "Post: Too long."




def test_pages_fit_a_phone_and_every_field_has_a_label(dep, browser):
    sign_in(browser, dep, DEMO)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        for path in ("/", f"/u/{DEMO}", "/explore"):
            browser.get(dep.url(path))
            wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, POSTS))
            width = browser.execute_script("return [document.documentElement.scrollWidth, innerWidth];")
            assert width[0] <= width[1], (path, width)
            unlabelled = browser.execute_script(
                "return [...document.querySelectorAll('main input, main textarea, main select')]"
                ".filter((e) => !e.labels.length).map((e) => e.outerHTML);")
            assert not unlabelled, (path, unlabelled)
            fake_buttons = browser.execute_script(
                "return [...document.querySelectorAll('[data-testid=like], [data-testid=more], [data-testid=follow]')]"
                ".filter((e) => e.tagName !== 'BUTTON').length;")
            assert fake_buttons == 0
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_an_expired_access_token_is_refreshed_without_the_person_noticing(tmp_path, browser):
    ttl = 3
    env = {"SEED_ON_START": "1", "SEED_USERS": "40", "SEED_POSTS": "300", "ACCESS_TOKEN_TTL": str(ttl)}
    with Deployment(tmp_path / "var", workers=4, env=env) as short:
        sign_in(browser, short, DEMO)
        first = tokens(browser)
        expires = json.loads(base64.urlsafe_b64decode(first["access_token"].split(".")[1] + "=="))["exp"]
        wait(browser, lambda b: time.time() > expires + 1, timeout=ttl + 30)
        assert fresh("GET", short.url("/api/me"), headers={"Authorization": f"Bearer {first['access_token']}"}).status_code == 401

        fill(browser.find_element(By.CSS_SELECTOR, "form[data-testid=compose]"), content="written after the token expired")
        wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, f"{POSTS} .content").text == "written after the token expired")
        assert not browser.find_elements(By.CSS_SELECTOR, "form[data-testid=login]")
        assert browser.find_element(By.CSS_SELECTOR, "form[data-testid=compose] .form-error").text == ""
        log = requests_log(browser)[:3][::-1]  # oldest first
        assert [(r["method"], r["path"], r["status"]) for r in log] == [
            ("POST", "/api/posts", "401"), ("POST", "/api/auth/refresh", "200"), ("POST", "/api/posts", "201"),
        ]
        assert tokens(browser)["refresh_token"] != first["refresh_token"]  # rotated and kept
        me = user(short, DEMO)
        assert api_json(short, f"/api/users/{me['id']}/posts?limit=1")["items"][0]["content"] == "written after the token expired"
