"""The README's screenshots of the web client: the demo user's home feed at phone width (390 px)
and at desktop width, taken from a real deployment (gunicorn, 4 workers, the demo data).

    .venv/bin/python -m tests.e2e.web_screenshots [folder]    # default: docs
"""
import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By

from .browser import headless_chromium
from .deployment import Deployment
from .webclient import POSTS, click, sign_in, wait, wait_for_feed

SIZES = {"web-phone": (390, 844, True), "web-desktop": (1280, 860, False)}


def take(folder: Path):
    with tempfile.TemporaryDirectory() as tmp, \
            Deployment(Path(tmp) / "var", workers=4, env={"SEED_ON_START": "1"}) as dep:
        browser = headless_chromium()
        try:
            sign_in(browser, dep, "demo1_00000")
            click(browser, browser.find_elements(By.CSS_SELECTOR, f"{POSTS} button[data-testid=like]")[1])
            wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, 'button[data-testid=like][aria-pressed="true"]'))
            for name, (width, height, mobile) in SIZES.items():
                browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
                browser.get(dep.url("/"))
                wait_for_feed(browser)
                for link in ("Explore", "Home"):  # the feed read again: 304, from L1 or L2
                    browser.find_element(By.LINK_TEXT, link).click()
                    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, POSTS))
                if not mobile:
                    browser.find_element(By.ID, "requests-toggle").click()
                browser.save_screenshot(str(folder / f"{name}.png"))
                print(folder / f"{name}.png")
        finally:
            browser.quit()


if __name__ == "__main__":
    take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
