"""A newcomer's first hour: the terminal (NO_COLOR, pipes, narrow windows), messages, and mlpcli outside the clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, invoke

REPO = Path(__file__).parent.parent
QUICK = ["-c", "quickstart", "--set", "model.hidden=[16]", "--epochs", "1"]


def _mlpcli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    full_env.pop("COLUMNS", None) if "COLUMNS" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "mlpcli", *args], cwd=cwd, capture_output=True, text=True, env=full_env
    )


def test_digits_stay_legible_under_no_color(monkeypatch) -> None:
    from rich.console import Console

    from mlpcli.cli import render

    monkeypatch.setattr(render, "console", Console(force_terminal=True, color_system="truecolor", no_color=True))
    digit = np.zeros((28, 28), np.float32)
    digit[4:24, 12:16] = 1.0
    plain = render.digit_block(digit).plain
    assert "█" in plain and " " in plain  # shapes, not one colourless block of half-blocks


def test_a_closed_pipe_ends_quietly_with_exit_0(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for args in (["gradcheck"], ["data", "show", "-c", "quickstart"], ["config", "list"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpcli", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.readline()
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read().decode()
        assert proc.wait() == 0 and err == "", (args, err)


def test_tables_written_to_a_file_keep_full_names(tmp_path) -> None:
    result = _mlpcli("gradcheck", cwd=tmp_path)
    assert "leaky_relu" in result.stdout and "cross_entropy" in result.stdout and "…" not in result.stdout


def test_runs_never_cuts_the_folder_at_80_columns(tmp_path) -> None:
    assert _mlpcli("train", *QUICK, cwd=tmp_path).returncode == 0
    (folder,) = (tmp_path / "runs" / "quickstart").iterdir()
    shown = _mlpcli("runs", cwd=tmp_path, COLUMNS="80").stdout
    assert str(folder.relative_to(tmp_path)) in shown and max(len(line) for line in shown.splitlines()) <= 80


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "optimizer.lr=-1"], "the command line's optimizer.lr=-1: optimizer.lr: must be > 0"),
        (["--epochs", "0"], "the command line's train.epochs=0"),
        (["--set", "epochs=5"], "did you mean train.epochs?"),
        (["--threads", "abc"], "train.threads: must be auto or a count"),
    ],
)
def test_mistakes_on_the_command_line_are_blamed_on_it(tmp_path, monkeypatch, args, expected) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "-c", str(CONFIGS / "quickstart.yaml"), *args)
    assert result.exit_code == 1 and expected in result.stderr and "quickstart.yaml" not in result.stderr
    assert result.stderr.count("must be") <= 1 and len(result.stderr.strip().splitlines()) == 1


def test_a_network_file_given_to_train_says_what_it_is(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["train", "-c", "toy"], ["config", "show", "toy"], ["gradcheck", "-c", "toy"]):
        result = invoke(*args)
        assert result.exit_code == 1 and "is a network file" in result.stderr and "trace" in result.stderr, args


def test_shipped_configs_work_by_name_outside_the_clone(tmp_path) -> None:
    listed = json.loads(_mlpcli("config", "list", "--json", cwd=tmp_path).stdout)
    names = {row["name"] for row in listed}
    assert {"mnist", "quickstart", "toy", "sweeps/lecture-activations", "papers/simard03-800-elastic"} <= names
    shown = _mlpcli("config", "show", "mnist", cwd=tmp_path)
    assert shown.returncode == 0 and "name: mnist" in shown.stdout
    (tmp_path / "my.yaml").write_text(shown.stdout)
    assert _mlpcli("config", "show", "my.yaml", "--set", "train.epochs=3", cwd=tmp_path).returncode == 0
    assert _mlpcli("train", *QUICK, cwd=tmp_path).returncode == 0


def test_install_hints_name_the_extra_as_it_is_installed_here(tmp_path, monkeypatch) -> None:
    from mlpcli.errors import install_hint

    monkeypatch.chdir(tmp_path)
    assert install_hint("plot") == "pip install 'mlpcli[plot]'"
    monkeypatch.chdir(REPO)  # inside the clone, the path form
    assert install_hint("plot") == "pip install '.[plot]'"


def test_a_failed_json_command_still_prints_one_json_document(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["train", "-c", "nonexistent", "--json"], ["eval", "nothing.npz", "--json"], ["runs", "x", "--json"]):
        result = invoke(*args)
        assert result.exit_code == 1 and set(json.loads(result.stdout)) == {"error"}, args


def test_compare_tells_two_sweeps_trials_apart() -> None:
    from mlpcli.cli.runs_cmd import _labels

    assert _labels([Path("runs/sweeps/a/trials/000"), Path("runs/sweeps/b/trials/000")]) == [
        "a/trials/000",
        "b/trials/000",
    ]


def test_predict_of_a_csv_shows_its_first_rows_and_inspect_one_w_form(sample_model, tmp_path) -> None:
    from helpers import write_csv

    from mlpcli.data.load import load_dataset

    data = load_dataset("mnist-sample")
    write_csv(tmp_path / "test.csv", data.test_x[:12], None)
    shown = invoke("predict", str(tmp_path / "test.csv"), "-c", str(sample_model)).stdout
    assert "row 1:" in shown and "row 10:" in shown and "2 more rows" in shown
    text = invoke("inspect", str(sample_model)).stdout
    assert text.count("128 x 784") == 2 and "784x128" not in text
