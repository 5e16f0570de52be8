"""The web app in a real browser: headless Chromium (Debian's, driven by selenium).

Sign in, read the overview, follow an alert to its example run, replay it with another model,
add a review, and check what the pages show. Screenshots land in artifacts/web/ (gitignored) so
a person can look at the pages the test saw. Where no Chromium can be installed the test skips
and says why.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, create_database, drop_database, role_url
from test_web import TOKEN, build_marts, seed_warehouse

from evals import warehouse
from evals.config import load_config
from evals.warehouse.roles import WEB_ROLE
from evals.web.app import create_app
from evals.web.db import WebDatabase

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO_ROOT / "artifacts" / "web"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def _install_chromium() -> str | None:
    """Install Debian's chromium + chromium-driver if missing; the reason it failed, or None."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return None
    if shutil.which("apt-get") is None:
        return "no chromium and no apt-get to install it"
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
    ):
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=600,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
        )
        if result.returncode != 0:
            return (
                f"could not install chromium: {' '.join(command)}: {result.stderr.strip()[-300:]}"
            )
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    if reason := _install_chromium():
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # a browser that installed but cannot start here
        pytest.skip(f"chromium did not start: {exc}")
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(pg_server, tmp_path_factory) -> Iterator[tuple[str, object]]:
    """The app served by uvicorn on a free loopback port, over a seeded warehouse with marts."""
    import uvicorn

    name = create_database(pg_server)
    url = pg_server.url(name)
    seeded = seed_warehouse(url)
    build_marts(url, tmp_path_factory.mktemp("dbt-target"))
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    app = create_app(config, TOKEN, database=WebDatabase(role_url(pg_server, url, WEB_ROLE)))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", seeded
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        warehouse._engine_for(url).dispose()
        drop_database(pg_server, name)


def _shot(driver, name: str) -> None:
    """Two screenshots: what a 1280x900 laptop screen shows first, and the whole page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}-screen.png"))
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(900, height), 4000))
    driver.save_screenshot(str(ARTIFACTS / f"{name}-page.png"))
    driver.set_window_size(1280, 900)


def _click_and_wait(driver, by: str, target: str, timeout: float = 30) -> None:
    """Click a link or submit button and wait until the next page has replaced this one."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element("tag name", "html")
    driver.find_element(by, target).click()

    def replaced(_driver) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:
            # Stale, or (mid-navigation) Chrome's "node does not belong to the document": gone.
            return True
        return False

    WebDriverWait(driver, timeout).until(replaced)
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def test_ops_follow_an_alert_to_a_run_replay_it_and_review_it(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, seeded = server
    driver = browser
    driver.get(base + "/")
    assert "/login" in driver.current_url
    _shot(driver, "00-login")
    driver.find_element(By.NAME, "name").send_keys("Grace")
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    _click_and_wait(driver, By.CSS_SELECTOR, "button[type=submit]")

    assert driver.current_url == base + "/"
    kpis = {
        card.find_element(By.CLASS_NAME, "label").text.lower(): card.find_element(
            By.CLASS_NAME, "value"
        ).text
        for card in driver.find_elements(By.CLASS_NAME, "kpi")
    }
    production = [r for r in seeded.runs if r.source == "production" and r.role != "judge"]
    assert kpis["calls"] == f"{len(production):,}"  # the default cohort: production, graded
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 5  # as in test_web
    _shot(driver, "01-overview")

    _click_and_wait(driver, By.LINK_TEXT, "Alerts")
    _shot(driver, "02-alerts")
    _click_and_wait(driver, By.LINK_TEXT, "stage loops stalling")
    assert "wilson_high" in driver.page_source
    _shot(driver, "03-alert")

    _click_and_wait(driver, By.CSS_SELECTOR, f'a[href="/runs/{seeded.target.run_id}"]')
    assert str(seeded.target.run_id) in driver.find_element(By.TAG_NAME, "h1").text
    assert "Messages as sent" in driver.page_source
    _shot(driver, "04-run")

    Select(driver.find_element(By.NAME, "model")).select_by_value("tutor-large")
    _click_and_wait(driver, By.CSS_SELECTOR, "#replay button[type=submit]", timeout=120)
    flash = driver.find_element(By.CSS_SELECTOR, ".flash").text
    assert flash.startswith("Replayed"), flash
    compare = driver.find_element(By.ID, "compare")
    assert "Old vs new" in compare.text and "tutor-large" in compare.text
    _shot(driver, "05-replay")

    Select(driver.find_element(By.CSS_SELECTOR, "#reviews select[name=verdict]")).select_by_value(
        "revise"
    )
    driver.find_element(By.CSS_SELECTOR, '#reviews input[value="off_by_one"]').click()
    driver.find_element(By.CSS_SELECTOR, "#reviews textarea[name=notes]").send_keys(
        "The loop misses the last element."
    )
    _click_and_wait(driver, By.CSS_SELECTOR, "#reviews button[type=submit]")
    flash = driver.find_element(By.CSS_SELECTOR, "#reviews .flash").text
    assert flash == "Review saved.", flash
    reviews = driver.find_element(By.ID, "reviews").text
    assert "Grace" in reviews and "The loop misses the last element." in reviews
    assert "off_by_one" in reviews
    _shot(driver, "06-reviewed")

    _click_and_wait(driver, By.LINK_TEXT, "Runs")
    assert len(driver.find_elements(By.CSS_SELECTOR, "tbody tr")) == 50
    _shot(driver, "07-runs")
