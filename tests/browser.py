"""Debian's headless Chromium through Selenium, as the browser tests and scripts/bench_playground.py drive it."""

from __future__ import annotations

import shutil
from typing import Any

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def paths() -> tuple[str, str]:
    """(the chromium binary, the chromedriver binary), where Debian's packages put them."""
    return shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"


def headless_chromium() -> Any:
    """A Selenium driver of headless Chromium at 1280x900 (ImportError without Selenium)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)
