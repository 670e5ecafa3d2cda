"""/api/docs in headless Chromium: Swagger UI (served by the deployment itself) reads
/api/openapi.json, takes a bearer token through "Authorize", and "Try it out" gets real
answers from the same deployment, without anything its Content-Security-Policy refuses."""
import json

import pytest
from selenium.webdriver.common.by import By

from .browser import headless_chromium
from .deployment import Deployment
from .support import register_and_login
from .webclient import click, shown, wait


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(1280, 1000)
    yield driver
    driver.quit()


def operation(browser, method, path):
    """The opened block of one operation (opened by clicking its summary)."""
    selector = f'.opblock-{method}:has(.opblock-summary-path[data-path="{path}"])'
    block = wait(browser, shown(selector))
    if "is-open" not in block.get_attribute("class"):
        click(browser, block.find_element(By.CSS_SELECTOR, ".opblock-summary-control"))
        wait(browser, lambda b: "is-open" in b.find_element(By.CSS_SELECTOR, selector).get_attribute("class"))
    return browser.find_element(By.CSS_SELECTOR, selector)


def try_it(browser, method, path) -> tuple:
    """Run "Try it out" → "Execute" on an operation: (status shown, body shown, curl shown)."""
    block = operation(browser, method, path)
    click(browser, block.find_element(By.CSS_SELECTOR, ".try-out__btn"))
    click(browser, wait(browser, lambda b: block.find_element(By.CSS_SELECTOR, "button.execute")))
    status = wait(browser, lambda b: block.find_element(
        By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status").text.strip())
    body = block.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_description pre").text
    curl = block.find_element(By.CSS_SELECTOR, ".curl-command").text
    return status, body, curl


def csp_violations(browser) -> list:
    return [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]


def test_authorize_then_try_it_against_the_same_deployment(tmp_path, browser):
    with Deployment(tmp_path / "var", workers=4, env={"SEED_ON_START": "1", "SEED_USERS": "30", "SEED_POSTS": "100"}) as dep:
        _, headers = register_and_login(dep, "docs_reader")
        token = headers["Authorization"].split(" ", 1)[1]
        browser.get(dep.url("/api/docs"))
        wait(browser, shown(".swagger-ui .info .title"))
        assert "feedapp" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text

        click(browser, browser.find_element(By.CSS_SELECTOR, ".auth-wrapper button.authorize"))
        modal = wait(browser, shown(".modal-ux"))
        modal.find_element(By.CSS_SELECTOR, "input").send_keys(token)
        modal.find_element(By.CSS_SELECTOR, "button.authorize").click()
        wait(browser, lambda b: modal.find_element(By.CSS_SELECTOR, "button.btn-done"))
        modal.find_element(By.CSS_SELECTOR, "button.btn-done").click()
        wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, ".modal-ux"))

        status, body, _ = try_it(browser, "get", "/api/posts")
        assert status == "200"
        listing = json.loads(body)
        assert listing["total"] == 100 and len(listing["items"]) == 20

        status, body, curl = try_it(browser, "get", "/api/me")  # declares the bearer scheme
        assert status == "200" and json.loads(body)["username"] == "docs_reader"
        assert f"Authorization: Bearer {token}" in curl
        assert dep.base in curl  # this deployment, not a server named in the document

        assert csp_violations(browser) == []
