"""The web app in a real browser: Debian's headless Chromium, driven by Playwright.

Two walks over one served warehouse (the web tests' seeded production and golden calls, plus
real evaluation runs on the simulator: three checkpoints of one family and a base model run on
two nights, so items flip, and one killed run):

- ops: sign in, read the overview, follow an alert to its example run, replay it with another
  model, add a review, list the runs;
- evaluations: overview → leaderboard → compare (from the leaderboard's link) → a flipped item's
  run page → batches → the family's training curve.

Screenshots land in artifacts/web/ (gitignored); docs/screenshots/ holds a reviewed set. Only
`-m browser` runs these; without Chromium at /usr/bin/chromium, or without the `playwright`
package (the `dev` extra), they skip and say why. Playwright never downloads a browser here: it
launches the system's.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, create_database, drop_database, role_url
from test_batch_views import evaluate
from test_batch_views import write_suite as write_batch_suite
from test_web import TOKEN, build_marts, seed_warehouse

from evals import warehouse
from evals.config import load_config
from evals.warehouse.roles import WEB_ROLE
from evals.web.app import create_app
from evals.web.db import WebDatabase

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "artifacts" / "web"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREEN = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def chromium() -> None:
    """Skip at once, before any warehouse is built, where no browser can run."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def browser(chromium, server) -> Iterator:
    """After the server: Playwright's sync API keeps an event loop on this thread, and the
    server's fixture runs evaluations with asyncio.run."""
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
            )
        except Error as exc:  # a browser that is there but cannot start here
            pytest.skip(f"chromium did not start: {exc.message.splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport=SCREEN)
    context.set_default_timeout(60_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(chromium, pg_server, tmp_path_factory) -> Iterator[tuple[str, object]]:
    """The app served by uvicorn on a free loopback port, over a seeded warehouse with real
    evaluation runs and the marts built."""
    import uvicorn

    name = create_database(pg_server)
    url = pg_server.url(name)
    seeded = seed_warehouse(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warehouse.URL_ENV, url)
        evaluate(url, write_batch_suite(tmp_path_factory.mktemp("suite") / "suite.yaml"))
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


def _shot(page, name: str) -> None:
    """Two screenshots: what a 1280x900 laptop screen shows first, and the whole page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}-screen.png")
    page.screenshot(path=ARTIFACTS / f"{name}-page.png", full_page=True)


def _sign_in(page, base: str) -> None:
    page.goto(base + "/")
    assert "/login" in page.url
    page.fill("input[name=name]", "Grace")
    page.fill("input[name=token]", TOKEN)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == base + "/"


def _follow(page, selector: str) -> None:
    """Click a link or submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def test_ops_follow_an_alert_to_a_run_replay_it_and_review_it(page, server):
    base, seeded = server
    page.goto(base + "/")
    _shot(page, "00-login")
    _sign_in(page, base)
    production = [r for r in seeded.runs if r.source == "production" and r.role != "judge"]
    days = sorted(r.started_at.date() for r in production)
    # the evaluation runs are newer than the seeded production weeks: ask for those weeks
    page.goto(f"{base}/?date_from={days[0]}&date_to={days[-1]}")
    kpis = {
        card.locator(".label").inner_text().lower(): card.locator(".value").inner_text()
        for card in page.locator(".kpi").all()
    }
    assert kpis["calls"] == f"{len(production):,}"  # the default cohort: production, graded
    assert page.locator("svg.chart").count() == 5  # as in test_web
    _shot(page, "01-overview")

    _follow(page, "nav >> text=Alerts")
    _shot(page, "02-alerts")
    _follow(page, "text=stage loops stalling")
    assert "wilson_high" in page.content()
    _shot(page, "03-alert")

    _follow(page, f'a[href="/runs/{seeded.target.run_id}"]')
    assert str(seeded.target.run_id) in page.locator("h1").inner_text()
    assert "Messages as sent" in page.content()
    _shot(page, "04-run")

    page.select_option("#replay select[name=model]", "tutor-large")
    _follow(page, "#replay button[type=submit]")
    flash = page.locator(".flash").first.inner_text()
    assert flash.startswith("Replayed"), flash
    compare = page.locator("#compare").inner_text()
    assert "Old vs new" in compare and "tutor-large" in compare
    _shot(page, "05-replay")

    page.select_option("#reviews select[name=verdict]", "revise")
    page.check('#reviews input[value="off_by_one"]')
    page.fill("#reviews textarea[name=notes]", "The loop misses the last element.")
    _follow(page, "#reviews button[type=submit]")
    flash = page.locator("#reviews .flash").inner_text()
    assert flash == "Review saved.", flash
    reviews = page.locator("#reviews").inner_text()
    assert "Grace" in reviews and "The loop misses the last element." in reviews
    assert "off_by_one" in reviews
    _shot(page, "06-reviewed")

    _follow(page, "nav >> text=Runs")
    assert page.locator("tbody tr").count() == 50
    _shot(page, "07-runs")


def test_a_team_walks_from_the_leaderboard_to_a_flipped_item_and_the_training_curve(page, server):
    base, _ = server
    _sign_in(page, base)
    _shot(page, "10-overview")

    _follow(page, "nav >> text=Leaderboard")
    board = page.locator("table").first
    # the suite's leader first: ck-200 (simulated at 90 %), then the others by accuracy
    assert board.locator("tbody tr").first.inner_text().startswith("ck-200")
    assert page.locator("svg.chart").count() == 1  # the cost-per-correct scatter
    _shot(page, "11-leaderboard")

    _follow(page, 'a:has-text("vs ck-200") >> nth=0')
    assert re.match(r"ck-200 → \S+ on t-grader", page.locator("h1").inner_text())
    flips = page.locator("table.flips tbody tr")
    assert flips.count() > 0
    assert float(page.locator("#mcnemar-p").inner_text()) < 1
    _shot(page, "12-compare")

    flipped_item = flips.first.get_attribute("data-item")
    b_run = flips.first.locator("td:nth-child(4) a")
    run_id = b_run.get_attribute("title")
    _follow(page, "table.flips tbody tr >> nth=0 >> td:nth-child(4) a")
    assert page.url == f"{base}/runs/{run_id}"
    assert run_id in page.locator("h1").inner_text()
    assert flipped_item in page.content()
    _shot(page, "13-flipped-run")

    _follow(page, "nav >> text=Batches")
    rows = page.locator("tbody tr")
    killed = rows.filter(has_text="stale")
    assert killed.count() == 1 and "base" in killed.inner_text()
    _shot(page, "14-batches")

    _follow(page, 'a[href="/models/tutor"] >> nth=0')
    assert page.locator("h1").inner_text().startswith("tutor")
    assert page.locator("#best-overall").inner_text() == "ck-200"
    assert page.locator("svg.chart").count() == 1
    _shot(page, "15-model-curve")
