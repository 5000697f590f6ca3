"""Headless Chromium for the browser tests, and waiting for what a person would see.

Chromium comes from the system (Debian: ``apt-get install -y chromium chromium-driver``) and is driven through
its matching chromedriver with Selenium (``pip install selenium==4.51.0``); nothing is downloaded at test time.
A missing browser is an error, never a skip: the "seen as a person sees it" check must not silently vanish.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "install the browser and its driver with `apt-get install -y chromium chromium-driver` (Debian/Ubuntu) and "
    "Selenium with `pip install selenium==4.51.0` (the dev extra), or set CHROMIUM / CHROMEDRIVER to their paths"
)
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
    "--window-size=1440,1000",
)


class BrowserMissingError(RuntimeError):
    """Chromium, chromedriver or Selenium is not installed (the test fails with how to install them)."""


def _first_existing(env: str, *candidates: str) -> str | None:
    for path in (os.environ.get(env), *candidates):
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


def browser_paths() -> tuple[str, str]:
    """(chromium binary, chromedriver binary); raises :class:`BrowserMissingError` saying how to install."""
    chromium = _first_existing("CHROMIUM", "/usr/bin/chromium", "/usr/bin/chromium-browser",
                               shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
    driver = _first_existing("CHROMEDRIVER", "/usr/bin/chromedriver", shutil.which("chromedriver") or "")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if path is None]
    if missing:
        raise BrowserMissingError(f"{' and '.join(missing)} not found; {INSTALL_HINT}")
    try:
        import selenium  # noqa: F401
    except ImportError as exc:
        raise BrowserMissingError(f"the selenium package is not installed; {INSTALL_HINT}") from exc
    return chromium, driver  # type: ignore[return-value]


@contextmanager
def chromium(user_data_dir: Path) -> Iterator[Any]:
    """Headless Chromium driven by Selenium through the system chromedriver, browser console logged."""
    binary, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.set_page_load_timeout(120)
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """Browser console entries at level SEVERE since the last call (errors, uncaught exceptions, failed loads)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def wait_for_text(driver: Any, texts: list[str], limit_s: float = 90.0) -> str:
    """Wait until every string in ``texts`` is in the page's visible text; returns that text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def seen(drv: Any) -> str | bool:
        body = drv.find_element(By.TAG_NAME, "body").text
        return body if all(t in body for t in texts) else False

    try:
        return WebDriverWait(driver, limit_s, poll_frequency=0.5).until(seen)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        missing = [t for t in texts if t not in body]
        raise AssertionError(f"not shown after {limit_s:.0f} s: {missing}\npage text:\n{body[:3000]}") from None
