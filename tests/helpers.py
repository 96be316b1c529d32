"""What many test files share: the one CLI helper."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from mlpcli.cli.main import app

CONFIGS = Path(__file__).parent.parent / "configs"


def invoke(*args: str) -> Result:
    """Run `mlpcli ARGS...` in this process and return typer's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def write_csv(path: Path, x: np.ndarray, y: np.ndarray | None) -> Path:
    """A Kaggle-style CSV: `label,pixel0,...` rows (or `pixel0,...` without labels) of uint8 images (n, 784)."""
    header = (["label"] if y is not None else []) + [f"pixel{i}" for i in range(x.shape[1])]
    rows = x.astype(int) if y is None else np.column_stack([y, x]).astype(int)
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=",".join(header), comments="")
    return path


def chromium():  # noqa: ANN201
    """Debian's headless Chromium through Selenium; skipped (or failed, under .ci/run) when it is missing."""
    chromium, driver = (
        shutil.which("chromium") or "/usr/bin/chromium",
        shutil.which("chromedriver") or "/usr/bin/chromedriver",
    )
    if not (Path(chromium).exists() and Path(driver).exists()):
        missing = "headless Chromium is not installed: apt-get install -y chromium chromium-driver"
        if os.environ.get("MLPCLI_TEST_BROWSER") == "1":  # .ci/run installed it: its absence is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    if os.environ.get("MLPCLI_TEST_BROWSER") == "1":  # under .ci/run a missing Selenium fails, never skips
        import selenium.webdriver as webdriver
    else:
        webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)
