"""What many test files share: the one CLI helper."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from mlpcli.cli.main import app

CONFIGS = Path(__file__).parent.parent / "configs"


def invoke(*args: str) -> Result:
    """Run `mlpcli ARGS...` in this process and return typer's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args])


@contextmanager
def address_space_limit(extra_bytes: int) -> Iterator[None]:
    """Bound this process's address space to what it maps now plus extra_bytes for the `with` block, so that a
    runaway allocation fails in the test instead of exhausting the machine; the old limit is back afterwards.
    Relative, because what a test process maps depends on what ran before it (BLAS's threads, their buffers)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        now = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = now + extra_bytes if hard == resource.RLIM_INFINITY else min(now + extra_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def write_csv(path: Path, x: np.ndarray, y: np.ndarray | None) -> Path:
    """A Kaggle-style CSV: `label,pixel0,...` rows (or `pixel0,...` without labels) of uint8 images (n, 784)."""
    header = (["label"] if y is not None else []) + [f"pixel{i}" for i in range(x.shape[1])]
    rows = x.astype(int) if y is None else np.column_stack([y, x]).astype(int)
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=",".join(header), comments="")
    return path


def chromium():  # noqa: ANN201
    """Debian's headless Chromium through Selenium; skipped (or failed, under .ci/run) when it is missing."""
    from browser import headless_chromium, paths

    if not all(Path(p).exists() for p in paths()):
        missing = "headless Chromium is not installed: apt-get install -y chromium chromium-driver"
        if os.environ.get("MLPCLI_TEST_BROWSER") == "1":  # .ci/run installed it: its absence is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    if os.environ.get("MLPCLI_TEST_BROWSER") != "1":  # under .ci/run a missing Selenium fails, never skips
        pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    return headless_chromium()
