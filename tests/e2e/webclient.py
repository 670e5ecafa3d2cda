"""Driving the web client in headless Chromium through its fixed hooks (API.md, "The web
client"): shared by tests/e2e/test_web_client.py and the README's screenshots."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from .support import PASSWORD

TIMEOUT = 30  # seconds; the machine is shared and loaded
POSTS = "[data-testid=feed] article[data-post-id]"


def wait(browser, condition, timeout=TIMEOUT, message=""):
    """What `condition(browser)` returns once it is truthy."""
    return WebDriverWait(browser, timeout).until(condition, message)


def shown(selector):
    """A wait condition: the first displayed element matching `selector`."""
    def condition(browser):
        return next((e for e in browser.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()), None)
    return condition


def post_ids(browser) -> list:
    """The ids of the posts in the page's list, top to bottom (read in one script run)."""
    return browser.execute_script(
        f"return [...document.querySelectorAll('{POSTS}')].map((a) => a.dataset.postId);")


def open_signed_out(browser, dep, path="/"):
    """`path` in a browser that holds no tokens of this deployment."""
    browser.get(dep.url("/healthz"))  # same origin: its localStorage can be cleared here
    browser.execute_script("localStorage.clear();")
    browser.get(dep.url(path))


def click(browser, element):
    """Click `element` once it is scrolled to the middle of the window (ChromeDriver scrolls it
    to the bottom edge, under the page's fixed footer)."""
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def fill(form, **fields):
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def sign_in(browser, dep, username, password=PASSWORD):
    """Sign in through the form at / and wait for the home feed's first page."""
    open_signed_out(browser, dep)
    fill(wait(browser, shown("form[data-testid=login]")), username=username, password=password)
    wait_for_feed(browser)


def sign_up(browser, dep, username, password=PASSWORD):
    """Sign up through the form at / (which signs in) and wait for the home page."""
    open_signed_out(browser, dep)
    form = wait(browser, shown("form[data-testid=register]"))
    fill(form, username=username, email=f"{username}@example.com", password=password)
    wait_for_feed(browser)


def wait_for_feed(browser):
    """The home page is up and its first page was read (posts, or the note that there are none)."""
    wait(browser, shown("form[data-testid=compose]"))
    wait(browser, lambda b: post_ids(b) or shown(".list .empty")(b), message="the feed never loaded")


def tokens(browser) -> dict | None:
    return browser.execute_script("return JSON.parse(localStorage.getItem('feedapp.tokens'));")
