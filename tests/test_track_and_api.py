"""TensorBoard and MLflow tracking read back with their own readers; the Python API; runs --csv."""

from __future__ import annotations

import csv
import dataclasses
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
    assert isinstance(report, mlpcli.EvalResult)
    assert report.n == 1000 and report.accuracy == pytest.approx(result.test_accuracy)
    as_json = json.loads(invoke("eval", str(result.run_dir), "--json").stdout)
    assert set(as_json) == {f.name for f in dataclasses.fields(report)}  # the CLI's field names, all of them
    assert as_json["accuracy"] == report.accuracy and as_json["confusion_matrix"] == report.confusion_matrix


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


def _model(tmp_path):
    return mlpcli.load(
        mlpcli.train(
            "quickstart", overrides={"train.epochs": 1, "model.hidden": [16]}, out=tmp_path / "m", progress=False
        ).checkpoint
    )


@pytest.mark.parametrize(
    ("images", "says"),
    [
        (np.full((2, 784), np.nan), "finite"),
        (np.full((1, 28, 28), np.inf), "finite"),
        (np.zeros((3, 100)), "shape"),
        (np.zeros((2, 2, 28, 28)), "shape"),
        (np.array([["a"] * 784], dtype=object), "numbers"),
        (np.array(["x"] * 784), "numbers"),
        (np.zeros((0, 784)), "no pictures"),
        (np.full((1, 784), 300.0), "0-255"),
        (np.full((1, 784), -1.0), "0-255"),
        (np.ones((1, 784), dtype=bool), "numbers"),
        ([[0.0] * 783], "shape"),
        (12, "cannot read int"),
    ],
)
def test_predict_refuses_what_is_not_a_picture(tmp_path, monkeypatch, images, says) -> None:
    monkeypatch.chdir(tmp_path)
    model = _model(tmp_path)
    with pytest.raises(mlpcli.MlpcliError, match=says) as info:
        model.predict(images)
    assert len(str(info.value).splitlines()) == 1


def test_the_api_contract_overrides_errors_and_overwrite(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    a = mlpcli.train("quickstart", overrides={"train.epochs": 1, "model.hidden": [16]}, out="a", progress=False)
    b = mlpcli.train("quickstart", overrides=["train.epochs=1", "model.hidden=[16]"], out="b", progress=False)
    c = mlpcli.train("quickstart", overrides="train.epochs=1", out="c", progress=False)  # one string: one override
    assert a.config["model"]["hidden"] == b.config["model"]["hidden"] == [16] and c.config["train"]["epochs"] == 1
    assert a.test_accuracy == b.test_accuracy
    with pytest.raises(mlpcli.MlpcliError, match="already holds|used|--overwrite|overwrite"):
        mlpcli.train("quickstart", overrides="train.epochs=1", out="c", progress=False)
    again = mlpcli.train("quickstart", overrides="train.epochs=1", out="c", progress=False, overwrite=True)
    assert again.run_dir == c.run_dir
    with pytest.raises(mlpcli.MlpcliError, match="mlpcli config list"):
        mlpcli.train(None)
    for bad_config in (7, 1.5, ["quickstart"]):
        with pytest.raises(mlpcli.MlpcliError, match="a config is a name"):
            mlpcli.train(bad_config)
    for bad_overrides in (7, [1, 2], {"": 1}, {"train.epochs": object()}):
        with pytest.raises(mlpcli.MlpcliError, match="overrides"):
            mlpcli.train("quickstart", overrides=bad_overrides)
    with pytest.raises(mlpcli.MlpcliError, match="epochs"):
        mlpcli.train("quickstart", overrides={"train.epochs": True}, progress=False)  # a bool is not a count
    for call in (lambda: mlpcli.load(3), lambda: mlpcli.evaluate(None), lambda: mlpcli.evaluate(a.run_dir, split="x")):
        with pytest.raises(mlpcli.MlpcliError):
            call()
    with pytest.raises(mlpcli.MlpcliError):
        mlpcli.evaluate(a.run_dir, dataset="no-such-dataset")


# ---- tracking never holds a run hostage ----------------------------------------------------------


class _Stuck(_Recorder):
    """A tracker whose every epoch waits for an answer that never comes (a black-hole server)."""

    def epoch(self, run: object, row: dict) -> None:
        import threading

        threading.Event().wait()


class _Failing(_Recorder):
    """A tracker whose store refuses to write, with a long message whose end says the fix."""

    def start(self, run: object) -> None:
        raise PermissionError(
            "attempt to write a readonly database: " + "x" * 400 + " FIX: point train.mlflow_uri at a writable store"
        )


def test_a_tracker_that_never_answers_costs_the_budget_then_is_left_behind(tmp_path, monkeypatch) -> None:
    from mlpcli.training import tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tracking, "BUDGET_SECONDS", 0.3)
    monkeypatch.setitem(TRACKERS, "mlflow", lambda: _Stuck("mlflow"))
    result = invoke("train", *QUICK, "--track", "mlflow", "--out", "r")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("mlflow tracking is off") == 1 and "files are complete" in result.stderr
    assert json.loads((tmp_path / "r" / "status.json").read_text())["status"] == "finished"
    assert len(_metrics(tmp_path / "r")) == 3 and (tmp_path / "r" / "checkpoint.npz").is_file()


def test_a_failing_store_is_one_whole_warning_that_keeps_its_fix(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(TRACKERS, "mlflow", lambda: _Failing("mlflow"))
    result = invoke("train", *QUICK, "--track", "mlflow", "--out", "r")
    assert result.exit_code == 0
    warning = [line for line in result.stderr.splitlines() if "tracking is off" in line]
    assert len(warning) == 1 and warning[0].rstrip().endswith("writable store")


@pytest.mark.parametrize("server", ["black-hole", "errors", "unknown-scheme"])
def test_mlflow_against_a_bad_tracking_uri_finishes_the_run(tmp_path, server) -> None:
    """The real MLflow client against a server that never answers, one that answers 500, and a URI of an unknown
    scheme: the run finishes with its files, one warning, no MLflow log line on the terminal."""
    import os
    import socket
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    pytest.importorskip("mlflow", reason="the track extra is not installed: pip install '.[track]'")
    stop = threading.Event()
    if server == "black-hole":
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # connections are queued and never answered
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    elif server == "errors":

        class Fails(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_error(500, "store unavailable")

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        httpd = HTTPServer(("127.0.0.1", 0), Fails)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        uri = f"http://127.0.0.1:{httpd.server_address[1]}"
    else:
        uri = "nosuchscheme://somewhere"
    code = (
        "import sys\nfrom mlpcli.training import tracking\ntracking.BUDGET_SECONDS = 3.0\n"
        "from mlpcli.cli.main import main\nsys.argv = ['mlpcli', *sys.argv[1:]]\nmain()\n"
    )
    args = ["train", *QUICK, "--set", f"train.mlflow_uri={uri}", "--track", "mlflow", "--out", "r"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True, env=env
        )
    finally:
        stop.set()
        if server == "black-hole":
            sock.close()
        elif server == "errors":
            httpd.shutdown()
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r" / "status.json").read_text())["status"] == "finished"
    lines = done.stderr.splitlines()
    assert sum("mlflow tracking is off" in line for line in lines) == 1, done.stderr
    assert not [line for line in lines if " INFO " in line or line.startswith("INFO")], done.stderr
