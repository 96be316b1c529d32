"""Every shipped config trains: one epoch of each paper recipe and record config on the shipped sample (smoke)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpcli.config import load_config
from mlpcli.training import service as training

CONFIGS = Path(__file__).parent.parent / "configs"
RECORDS = ("mnist-best.yaml", "mnist-record.yaml", "mnist-augmented.yaml", "fashion-best.yaml", "mnist.yaml")
RECIPES = sorted((CONFIGS / "papers").glob("*.yaml")) + [CONFIGS / n for n in RECORDS]
SMOKE = ["data.dataset=mnist-sample", "data.validation=500", "train.epochs=1"]


def test_there_is_a_config_for_every_published_row() -> None:
    assert len(list((CONFIGS / "papers").glob("*.yaml"))) == 9


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_trains_one_epoch_on_the_sample(tmp_path, path: Path) -> None:
    text = path.read_text()
    if "papers" in str(path):  # the header names the paper, the row and the paper's error
        assert "test error" in text.splitlines()[1] + text.splitlines()[2] and "Changed, and why" in text
    cfg = load_config(path, SMOKE)
    result = training.run(training.prepare(cfg), tmp_path / "run")
    assert result.history.rows[0]["epoch"] == 1 and result.test is not None
    assert result.test.accuracy > 0.2  # one epoch on 4,500 digits: far from chance, nothing more is claimed
