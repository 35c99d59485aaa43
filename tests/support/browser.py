"""A real headless browser for tests: Debian's ``chromium`` driven through its
``chromedriver`` by Selenium.

The driver path is given explicitly, so Selenium Manager never tries to download a browser or a
driver. When chromium or its driver is missing the test is skipped with the reason shown,
unless ``STEWARD_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_NAMES = ("chromium", "chromium-browser")
WINDOW = (1440, 900)  # a laptop screen
REQUIRE = "STEWARD_REQUIRE_BROWSER"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
    if not any(shutil.which(name) for name in CHROMIUM_NAMES):
        return "chromium is not installed (apt-get install chromium chromium-driver)"
    return None


def headless_chromium() -> Iterator[Any]:
    """The body of a fixture: a headless chromium (a Selenium WebDriver), quit at teardown."""
    why = _missing()
    if why is not None:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but no browser: {why}")
        pytest.skip(f"no headless browser: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, what: str, check: Callable[[Any], T], timeout: float = 10.0) -> T:
    """Poll ``check(driver)`` until it returns something truthy (returned) or ``timeout``
    passes; a timeout says what was awaited and where the page was."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(
            driver,
            timeout,
            poll_frequency=0.05,
            ignored_exceptions=[StaleElementReferenceException],
        ).until(check)
    except TimeoutException:
        raise AssertionError(
            f"timed out after {timeout:g}s waiting for {what} on {driver.current_url}"
        ) from None
