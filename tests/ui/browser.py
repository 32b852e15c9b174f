"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, and a `forge ui`
server on a free loopback port: what the browser tests and the screenshot script share."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]
ROOT = Path(__file__).resolve().parents[2]


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            return f"{path} not found: apt-get install -y {package}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install selenium"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def forge_ui(runs_dir: Path, ray_dashboard: str | None = None, timeout: float = 60.0):
    """`forge ui --runs-dir runs_dir` on a free loopback port; yields its base URL. Without
    `ray_dashboard` it looks for a cluster on a free port, so it finds none."""
    port = free_port()
    dashboard = ray_dashboard or f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = tempfile.NamedTemporaryFile("w+", prefix="forge-ui-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "forge.cli", "ui", "--runs-dir", str(runs_dir),
                             "--port", str(port), "--ray-dashboard", dashboard],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"forge ui did not start: {Path(log.name).read_text()[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.unlink(log.name)


@contextmanager
def chromium(downloads: Path | None = None):
    """A headless Chromium with a fresh profile directory (and downloads saved, unasked, into
    `downloads`); yields the Selenium driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="forge-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    if downloads is not None:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_text(driver, *texts: str, timeout: float = 20.0) -> str:
    """Wait until every one of `texts` is visible (Streamlit draws element by element after its
    websocket connects, and reruns fragments on its own); returns the page's visible text."""
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = visible_text(driver)
        if all(text in body for text in texts):
            return body
        time.sleep(0.25)
    missing = [t for t in texts if t not in body]
    raise AssertionError(f"{missing} not on the page within {timeout:.0f}s; it shows:\n{body[-3000:]}")


def visible_text(driver) -> str:
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except Exception:  # noqa: BLE001  (the page is being redrawn)
        return ""


def settled(driver, timeout: float = 20.0) -> None:
    """Wait until Streamlit has drawn everything: no skeleton placeholders, no running script."""
    deadline = time.monotonic() + timeout
    busy = "return document.querySelectorAll('[data-testid=stSkeleton], [data-testid=stStatusWidget]').length"
    time.sleep(0.5)
    while driver.execute_script(busy) and time.monotonic() < deadline:
        time.sleep(0.25)
    time.sleep(0.5)


def screenshot(driver, path: Path, max_height: int = 3200) -> Path:
    """The whole page as a PNG: the window grown to the app's scroll height (Streamlit scrolls
    inside its own container, so the body alone has no height)."""
    settled(driver)
    full = driver.execute_script(
        "const m = document.querySelector('[data-testid=stMain]');"
        "return m ? m.scrollHeight : document.documentElement.scrollHeight;")
    driver.set_window_size(1400, min(max(int(full) + 140, 900), max_height))
    settled(driver)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path
