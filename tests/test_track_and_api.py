"""TensorBoard and MLflow tracking read back with their own readers; the Python API; runs --csv."""

from __future__ import annotations

import csv
import io
import json
import typing

import numpy as np
import pytest
from helpers import CONFIGS, invoke
from PIL import Image, ImageDraw

import mlpcli
from mlpcli.config import TrackerName
from mlpcli.data.load import load_dataset
from mlpcli.training.tracking import TRACKERS

QUICK = ["-c", str(CONFIGS / "quickstart.yaml"), "--set", "model.hidden=[16]", "--epochs", "3"]


def _metrics(folder) -> list[dict]:
    return list(csv.DictReader((folder / "metrics.csv").open()))


def test_the_config_offers_exactly_the_registered_trackers() -> None:
    assert set(typing.get_args(TrackerName)) == set(TRACKERS)


def test_tensorboard_event_files_hold_what_metrics_csv_holds(tmp_path, monkeypatch) -> None:
    pytest.importorskip("tensorboardX", reason="the track extra is not installed: pip install '.[track]'")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    monkeypatch.chdir(tmp_path)
    result = invoke("train", *QUICK, "--set", "train.histograms_every=2", "--track", "tensorboard", "--out", "r")
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output
    acc = event_accumulator.EventAccumulator(str(tmp_path / "r" / "tensorboard"), size_guidance={"histograms": 0})
    acc.Reload()
    rows = _metrics(tmp_path / "r")
    for column, tag in (("train_loss", "loss/train"), ("val_accuracy", "accuracy/validation"), ("lr", "learning_rate")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2, 3]
        np.testing.assert_allclose([e.value for e in events], [float(r[column]) for r in rows], rtol=1e-6)
    assert {"weights/W1", "gradients/W1", "weights/b2"} <= set(acc.Tags()["histograms"])
    assert [e.step for e in acc.Histograms("weights/W1")] == [1, 2]
    assert "first_layer_templates" in acc.Tags()["images"]


def test_mlflow_runs_hold_params_metrics_and_files(tmp_path, monkeypatch) -> None:
    pytest.importorskip("mlflow", reason="the track extra is not installed: pip install '.[track]'")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    result = invoke("train", *QUICK, "--track", "mlflow", "--out", "r")
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["optimizer.lr"] == "0.05"
    assert run.data.tags["mlpcli.run_folder"] == str((tmp_path / "r").resolve())
    rows = _metrics(tmp_path / "r")
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2, 3]
    np.testing.assert_allclose([m.value for m in history], [float(r["val_loss"]) for r in rows], rtol=1e-9)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"checkpoint.npz", "metrics.csv", "config.yaml", "status.json"} <= artifacts


def test_a_sweep_is_a_parent_run_with_nested_trials(tmp_path, monkeypatch) -> None:
    pytest.importorskip("mlflow", reason="the track extra is not installed: pip install '.[track]'")
    pytest.importorskip("optuna", reason="the sweep extra is not installed")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    base = (CONFIGS / "quickstart.yaml").read_text().replace("epochs: 8", "epochs: 1").replace("[128]", "[8]")
    (tmp_path / "base.yaml").write_text(base.replace("train:\n", "train:\n  track: [mlflow]\n"))
    (tmp_path / "s.yaml").write_text("name: s\nbase: base.yaml\nparameters:\n  optimizer.lr: {values: [0.05, 0.1]}\n")
    assert invoke("sweep", str(tmp_path / "s.yaml"), "--json").exit_code == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}


def test_an_unreachable_tracking_server_costs_one_warning_not_the_run(tmp_path, monkeypatch) -> None:
    pytest.importorskip("mlflow", reason="the track extra is not installed: pip install '.[track]'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.chdir(tmp_path)
    result = invoke("train", *QUICK, "--track", "mlflow", "--out", "r")
    assert result.exit_code == 0 and result.stderr.count("mlflow tracking is off") == 1
    assert json.loads((tmp_path / "r" / "status.json").read_text())["status"] == "finished"


def test_a_missing_tracking_library_is_one_warning(tmp_path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    monkeypatch.chdir(tmp_path)
    result = invoke("train", *QUICK, "--track", "tensorboard", "--out", "r")
    assert result.exit_code == 0 and "tensorboard tracking is off" in result.stderr and "[track]'" in result.stderr


# ---- the Python API ---------------------------------------------------------------------------


def test_the_python_api_trains_loads_predicts_and_evaluates(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = mlpcli.train("quickstart", overrides=["train.epochs=2", "model.hidden=[32]"], out="api", progress=False)
    assert result.run_dir == tmp_path / "api" or result.run_dir.name == "api"
    assert len(result.history) == 2 and 0.5 < result.test_accuracy <= 1 and result.config["train"]["epochs"] == 2
    model = mlpcli.load(result.checkpoint)
    data = load_dataset("mnist-sample")
    for images in (data.test_x[:20], data.test_x[:20].reshape(-1, 28, 28), data.test_x[:20] / 255.0):
        labels, probabilities = model.predict(images)
        assert labels.shape == (20,) and probabilities.shape == (20, 10)
        assert np.mean(labels == data.test_y[:20]) > 0.6
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(100, 30), (100, 170)], fill=0, width=14)
    img.save(tmp_path / "one.png")
    labels, _ = model.predict([tmp_path / "one.png", img])
    assert labels.tolist() == [1, 1]
    report = mlpcli.evaluate(result.run_dir)
    assert report["n"] == 1000 and report["accuracy"] == pytest.approx(result.test_accuracy)


def test_api_errors_are_mlpcli_errors_with_the_cli_message(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(mlpcli.MlpcliError, match=r"optimizer\.lr: must be > 0"):
        mlpcli.train({"name": "x", "optimizer": {"lr": -1}}, progress=False)
    with pytest.raises(mlpcli.MlpcliError, match="no such checkpoint"):
        mlpcli.load(tmp_path / "missing.npz")


def test_runs_csv_is_the_json_as_a_table(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK, "--out", "runs/a").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(invoke("runs", "--csv").stdout)))
    as_json = json.loads(invoke("runs", "--json").stdout)
    assert [r["folder"] for r in rows] == [r["folder"] for r in as_json] and rows[0]["status"] == "finished"


def test_track_adds_to_the_configs_trackers(tmp_path, monkeypatch) -> None:
    """--track adds a tracker to train.track (as its help says), never replaces the config's own."""
    from mlpcli.config import load_config
    from mlpcli.training.lifecycle import add_trackers

    cfg = load_config(CONFIGS / "quickstart.yaml", ["train.track=[tensorboard]"])
    assert add_trackers(cfg, ["mlflow"]).train.track == ["tensorboard", "mlflow"]
    assert add_trackers(cfg, ["tensorboard"]).train.track == ["tensorboard"]  # named twice: once
    assert add_trackers(cfg, None) is cfg
    with pytest.raises(mlpcli.MlpcliError, match="train.track"):
        add_trackers(cfg, ["wandb"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(TRACKERS, "tensorboard", lambda: _Recorder("tensorboard"))
    monkeypatch.setitem(TRACKERS, "mlflow", lambda: _Recorder("mlflow"))
    _Recorder.started.clear()
    result = invoke("train", *QUICK, "--set", "train.track=[tensorboard]", "--track", "mlflow", "--out", "r")
    assert result.exit_code == 0, result.output
    assert _Recorder.started == ["tensorboard", "mlflow"]
    stored = json.loads(invoke("config", "show", "r/config.yaml", "--json").stdout)
    assert stored["train"]["track"] == ["tensorboard", "mlflow"]


class _Recorder:
    """A tracker that only records that it started."""

    started: list[str] = []

    def __init__(self, name: str) -> None:
        self.name = name

    def start(self, run: object) -> None:
        _Recorder.started.append(self.name)

    def epoch(self, run: object, row: dict) -> None:
        pass

    def end(self, run: object, status: object) -> None:
        pass


def test_out_on_a_finished_run_suggests_what_works(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK, "--out", "r").exit_code == 0
    result = invoke("train", *QUICK, "--out", "r")
    assert result.exit_code == 1 and "finished run" in result.stderr and "--overwrite" in result.stderr
    suggested = result.stderr.split("mlpcli train ", 1)[1].split()
    assert suggested[:2] == ["--resume", "r/last.npz"] and suggested[2] == "--epochs"
    resumed = invoke("train", *suggested[:4])  # what it suggests works
    assert resumed.exit_code == 0, resumed.output
