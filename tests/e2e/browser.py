"""Headless Chromium for browser tests: Debian's `chromium` and `chromium-driver`, installed
here when missing (the tests run as root on a Debian machine), driven through Selenium."""
import os
import shutil
import subprocess

PACKAGES = ("chromium", "chromium-driver")


def ensure_chromium():
    """Install Debian's Chromium and ChromeDriver unless both are on PATH; raise if that fails."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        raise RuntimeError(f"could not install {PACKAGES} from Debian's packages")


def headless_chromium(width=1400, height=1050):
    """A Selenium driver for headless Chromium; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions", "--no-first-run",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    return webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
