"""The live status page in a real headless browser (Debian's ``chromium`` and ``chromedriver``, driven by
Selenium): it shows every worker, a restart within two seconds, an error's traceback on a click; a screenshot
is saved as a test artifact (``SPOC_TEST_ARTIFACTS``, default ``.artifacts/`` at the repository's root).

``.ci/run`` installs both packages and requires them (``SPOC_REQUIRE_CHROMIUM=1``); elsewhere, without them,
the test is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spoc.testing import App
from status_apps import start_status_app

pytestmark = pytest.mark.timeout(120)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("SPOC_TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / ".artifacts"))
WORKERS = ["steady", "child", "jobs", "fails-first", "blocker"]


@pytest.fixture
def browser() -> Iterator[Any]:
    if CHROMIUM is None or DRIVER is None:
        if os.environ.get("SPOC_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium or chromedriver is missing, and SPOC_REQUIRE_CHROMIUM=1 (CI) requires them")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,900"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def rows(driver: Any) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    return {row.get_attribute("data-worker"): row for row in driver.find_elements(By.CSS_SELECTOR, "tr[data-worker]")}


def cell(row: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(row.find_element(By.CSS_SELECTOR, css).text)


def test_the_page_shows_every_worker_a_restart_and_a_traceback(
    spoc_app: Callable[..., App], tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    app, base = start_status_app(spoc_app, tmp_path)
    browser.get(f"{base}/")
    WebDriverWait(browser, 30).until(lambda d: list(rows(d)) == WORKERS)
    WebDriverWait(browser, 30).until(
        lambda d: all(r.get_attribute("data-state") == "running" for r in rows(d).values())
    )
    assert browser.title == "spoc status"
    assert cell(rows(browser)["child"], "td:nth-child(2)") == "running"

    (match,) = app.expect(r"child child runs as (\d+)")
    killed = time.monotonic()
    os.kill(int(match[1]), signal.SIGKILL)  # the test's supervisor restarts it at once
    WebDriverWait(browser, 10, poll_frequency=0.05).until(lambda d: cell(rows(d)["child"], "td.restarts") == "1")
    assert time.monotonic() - killed < 2.0, "a restart shows within two seconds"

    failed = rows(browser)["fails-first"]
    summary = failed.find_element(By.CSS_SELECTOR, "details.traceback summary")
    assert "ValueError" in summary.text
    traceback = failed.find_element(By.CSS_SELECTOR, "details.traceback pre")
    assert not traceback.is_displayed()
    summary.click()
    WebDriverWait(browser, 5).until(
        lambda d: rows(d)["fails-first"].find_element(By.CSS_SELECTOR, "details.traceback pre").is_displayed()
    )
    opened = rows(browser)["fails-first"].find_element(By.CSS_SELECTOR, "details.traceback pre")
    assert "ValueError: the first run fails on purpose" in opened.text
    time.sleep(1.5)  # two refreshes: an opened traceback stays open (a wait for something not to happen)
    assert rows(browser)["fails-first"].find_element(By.CSS_SELECTOR, "details.traceback pre").is_displayed()

    WebDriverWait(browser, 10).until(lambda d: cell(rows(d)["jobs"], "td:nth-child(6)") not in ("-", "0.0"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "status-page.png"))
