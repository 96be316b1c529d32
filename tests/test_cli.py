"""The command line, through typer.testing.CliRunner and a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FULL_MNIST, TINY
from helpers import invoke
from PIL import Image

from mlpcli import __version__
from mlpcli.data.load import load_dataset

CONFIGS = Path(__file__).parent.parent / "configs"
QUICK = ["--set", "train.epochs=2", "--set", "model.hidden=[32]"]


@pytest.fixture
def trained(tmp_path, monkeypatch) -> Path:
    """Train the quickstart config in tmp_path (the cwd), as a user would."""
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--config", str(CONFIGS / "quickstart.yaml"), *QUICK)
    assert result.exit_code == 0, result.output
    return run_dir(tmp_path, "quickstart") / "checkpoint.npz"


def run_dir(root: Path, name: str) -> Path:
    """The one run folder train made for config `name` under root/runs."""
    (folder,) = (root / "runs" / name).iterdir()
    return folder


def test_version_and_help() -> None:
    assert invoke("--version").stdout.strip() == f"mlpcli {__version__}"
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "eval", "predict", "data", "config", "plot"):
        assert command in result.stdout


def test_train_shows_header_epochs_and_summary(trained) -> None:
    result = invoke("train", "--config", str(CONFIGS / "quickstart.yaml"), *QUICK, "--out", "runs/again")
    out = result.stdout
    assert result.exit_code == 0
    assert "4,500 train, 500 validation, 1,000 test" in out
    assert "32 x 784" in out and "25,450" in out  # 784*32 + 32 + 32*10 + 10
    assert "1/2" in out and "2/2" in out and "* marks the best epoch so far, by lowest val loss" in out
    assert "test accuracy" in out and "learning curves" in out
    assert "runs/again/checkpoint.npz" in out


def test_train_json_is_one_document(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--config", str(CONFIGS / "quickstart.yaml"), *QUICK, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert {"test_accuracy", "test_loss", "best_epoch", "epochs", "seconds", "checkpoint"} <= set(doc)
    assert doc["epochs"] == 2 and 0.5 < doc["test_accuracy"] <= 1


def test_train_overrides_epochs_and_seed(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "-c", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--seed", "3", "--json")
    doc = json.loads(result.stdout)
    assert doc["epochs"] == 1
    assert "seed: 3" in (run_dir(tmp_path, "quickstart") / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "optimizer.lr=-1"], "optimizer.lr: must be > 0"),
        (["--set", "optimizer.lrr=1"], "did you mean lr?"),
        (["--set", "model.hidden=[1000000000]"], "would need"),
        (["--set", "nonsense"], "expected key.path=value"),
    ],
)
def test_bad_config_is_one_line_and_exit_1(tmp_path, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--config", str(CONFIGS / "quickstart.yaml"), *args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_usage_errors_exit_2() -> None:
    assert invoke("train", "--no-such-option").exit_code == 2
    assert invoke("predict").exit_code == 2
    assert invoke("eval", "a.npz", "--split", "valid").exit_code == 2


def test_missing_config_file_and_unwritable_out(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--config", "nope.yaml")
    assert result.exit_code == 1 and "nope.yaml: no such config file" in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("train", "--config", str(CONFIGS / "quickstart.yaml"), "--out", str(blocker / "run"))
    assert result.exit_code == 1 and "cannot write to the output folder" in result.stderr


def test_resume_continues_from_last(trained) -> None:
    last = trained.parent / "last.npz"
    result = invoke("train", "--resume", str(last), "--epochs", "3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs"] == 3


def test_config_show_and_schema(tmp_path) -> None:
    result = invoke("config", "show", str(CONFIGS / "mnist.yaml"), "--set", "seed=7")
    assert result.exit_code == 0 and "seed: 7" in result.stdout and "leaky_slope: 0.01" in result.stdout
    schema = json.loads(invoke("config", "schema").stdout)
    assert "optimizer" in schema["properties"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hidden: [0]\n")
    result = invoke("config", "show", str(bad))
    assert result.exit_code == 1 and "model.hidden.0: must be >= 1" in result.stderr


def test_eval_report_and_json(trained) -> None:
    result = invoke("eval", str(trained), "--errors", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "accuracy" in out and "top-3" in out and "per class" in out and "confusion matrix" in out
    assert "most confident mistakes" in out and "images/s" in out
    doc = json.loads(invoke("eval", str(trained), "--json").stdout)
    assert {"checkpoint", "dataset", "split", "n", "accuracy", "loss", "per_class", "confusion_matrix"} <= set(doc)
    assert doc["n"] == 1000 and len(doc["per_class"]) == 10
    cm = np.array(doc["confusion_matrix"])
    assert cm.sum() == 1000 and np.trace(cm) / 1000 == pytest.approx(doc["accuracy"])
    assert [r["support"] for r in doc["per_class"]] == cm.sum(axis=1).tolist()
    train = json.loads(invoke("eval", str(trained), "--json", "--split", "train").stdout)
    assert train["n"] == 5000 and train["split"] == "train"


def test_eval_defaults_to_the_latest_run_and_says_so(trained) -> None:
    result = invoke("eval", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["checkpoint"].endswith("checkpoint.npz")
    assert f"using {trained.relative_to(trained.parents[3])}" in result.stderr


def test_eval_on_another_dataset_folder(trained) -> None:
    doc = json.loads(invoke("eval", str(trained), "--dataset", str(TINY), "--json").stdout)
    assert doc["n"] == 100
    doc = json.loads(invoke("eval", str(trained), "--dataset", "mnist", "--data-dir", str(TINY), "--json").stdout)
    assert doc["n"] == 100 and doc["dataset"] == "mnist"


def test_eval_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("eval")
    assert result.exit_code == 1 and "no checkpoint given" in result.stderr
    (tmp_path / "x.npz").write_bytes(b"junk")
    result = invoke("eval", "x.npz")
    assert result.exit_code == 1 and "x.npz: not a valid .npz" in result.stderr


def _pictures(folder: Path, n: int = 4) -> list[int]:
    data = load_dataset("mnist-sample")
    folder.mkdir(exist_ok=True)
    for i in range(n):
        Image.fromarray(255 - data.test_x[i].reshape(28, 28)).resize((84, 84)).save(folder / f"d{i}.png")
    return data.test_y[:n].tolist()


def test_predict_files_folders_json_and_errors(trained, tmp_path) -> None:
    labels = _pictures(tmp_path / "pics")
    result = invoke("predict", str(tmp_path / "pics"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [Path(d["file"]).name for d in doc] == ["d0.png", "d1.png", "d2.png", "d3.png"]
    assert all(len(d["probabilities"]) == 10 and abs(sum(d["probabilities"]) - 1) < 1e-4 for d in doc)
    assert sum(d["prediction"] == y for d, y in zip(doc, labels)) >= 3
    assert f"using {trained.relative_to(trained.parents[3])}" in result.stderr
    (tmp_path / "pics" / "broken.png").write_bytes(b"text")
    result = invoke("predict", str(tmp_path / "pics"), str(tmp_path / "missing.png"), "-c", str(trained), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)  # every input, in order: 4 predictions and the 2 failures with their errors
    assert len(doc) == 6 and sum("error" in d for d in doc) == 2 and doc[-1]["file"].endswith("missing.png")
    assert "broken.png: not an image" in result.stderr and "missing.png: no such file" in result.stderr


def test_predict_human_output(trained, tmp_path) -> None:
    _pictures(tmp_path / "pics", 1)
    result = invoke("predict", str(tmp_path / "pics" / "d0.png"), "--show", "--top-k", "2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "d0.png" in lines[0] and "%" in lines[0]
    assert any("█" in line or "▀" in line for line in lines)  # the 28x28 drawn
    assert sum("%" in line for line in lines[1:]) == 2  # top-2 bars
    result = invoke("predict", str(tmp_path / "pics" / "d0.png"), "--raw")
    assert result.exit_code == 1 and "a raw picture must be 28x28" in result.stderr


def test_data_where_verify_and_import(tmp_path, monkeypatch) -> None:
    result = invoke("data", "where", "--json")
    doc = json.loads(result.stdout)
    assert doc["cache"] == os.environ["MLPCLI_DATA_DIR"]
    assert {r["state"] for r in doc["files"] if r["dataset"] == "mnist"} == {"missing"}
    # Fashion-MNIST is found where Debian's dataset-fashion-mnist installs it, when that package is there
    for r in (r for r in doc["files"] if r["dataset"] == "fashion-mnist"):
        assert r["state"] == "missing" or r["path"].startswith("/usr/share/datasets/fashion-mnist/")
    result = invoke("data", "import", "mnist", str(TINY))
    assert result.exit_code == 1 and "not the official mnist files" in result.stderr
    result = invoke("data", "verify", "mnist")
    assert result.exit_code == 1 and "mlpcli data fetch mnist" in result.stderr
    result = invoke("data", "fetch", "nope")
    assert result.exit_code == 1 and "unknown dataset 'nope'" in result.stderr


def test_data_fetch_through_a_local_mirror(serve, monkeypatch, tmp_path) -> None:
    # mnist's real checksums cannot match the tiny fixture: the fetch must refuse it and say why.
    server = serve()
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("m"))
    monkeypatch.setenv("MLPCLI_OFFLINE", "0")
    result = invoke("data", "fetch", "mnist")
    assert result.exit_code == 1 and "checksum mismatch" in result.stderr and server.url("m") in result.stderr


def test_plot_needs_metrics(tmp_path) -> None:
    result = invoke("plot", str(tmp_path))
    assert result.exit_code == 1 and "metrics.csv: no such file" in result.stderr


def test_a_real_subprocess_trains_and_predicts(tmp_path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mlpcli", "train", "--config", str(CONFIGS / "quickstart.yaml"), *QUICK],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "test accuracy" in run.stdout
    _pictures(tmp_path / "pics", 2)
    pred = subprocess.run(
        [sys.executable, "-m", "mlpcli", "predict", "pics", "--json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert pred.returncode == 0, pred.stderr
    assert len(json.loads(pred.stdout)) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "mlpcli", "eval", "missing.npz"], cwd=tmp_path, capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_plot_writes_a_png(trained) -> None:
    result = invoke("plot", str(trained.parent))
    assert result.exit_code == 0, result.output
    png = trained.parent / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as img:
        assert img.width > 300 and img.height > 200


def test_plot_without_matplotlib_says_how_to_get_it(trained, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    result = invoke("plot", str(trained.parent))
    assert result.exit_code == 1 and "[plot]'" in result.stderr and "pip install" in result.stderr


@pytest.mark.skipif(not FULL_MNIST, reason="set MLPCLI_TEST_MNIST_DIR to the folder of the four MNIST files")
def test_data_fetch_mnist_from_a_local_mirror_then_verify(serve, monkeypatch, isolated_env) -> None:
    server = serve(Path(FULL_MNIST))
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("mnist"))
    result = invoke("data", "fetch", "mnist")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("verified") == 4
    assert sorted(p.name for p in (isolated_env / "mnist").iterdir() if p.name != ".lock") == sorted(
        [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ]
    )
    doc = json.loads(invoke("data", "verify", "mnist", "--json").stdout)
    assert [r["state"] for r in doc] == ["verified"] * 4
    data = load_dataset("mnist", offline=True)
    assert data.train_x.shape == (60000, 784) and data.test_x.shape == (10000, 784)
    assert np.bincount(data.train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(data.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debians_package(monkeypatch) -> None:
    monkeypatch.setenv("MLPCLI_OFFLINE", "1")  # found where Debian installs it, never downloaded
    data = load_dataset("fashion-mnist")
    assert data.train_x.shape == (60000, 784) and data.test_x.shape == (10000, 784)
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    assert np.bincount(data.test_y).tolist() == [1000] * 10
