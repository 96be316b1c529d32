"""The playground: its API, its sessions' limits, exports that reproduce bit for bit, and the page in a browser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke

from mlpcli.config import load_config
from mlpcli.files import checkpoint
from mlpcli.training import service as training

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from mlpcli.serve.playground.app import create_app  # noqa: E402
from mlpcli.serve.playground.sessions import Sessions  # noqa: E402

DOCS = Path(__file__).parent.parent / "docs"


def _client(sessions: Sessions | None = None) -> TestClient:
    return TestClient(create_app(sessions=sessions), base_url="http://127.0.0.1:8001")


def test_sessions_step_and_report_the_contracts_keys() -> None:
    client = _client()
    sid = client.post("/api/sessions", json={"data": {"dataset": "spiral"}}).json()["id"]
    doc = client.post(f"/api/sessions/{sid}/step", json={"steps": 30}).json()
    assert set(doc) == {
        "step",
        "epoch",
        "train_loss",
        "test_loss",
        "train_accuracy",
        "test_accuracy",
        "dead",
        "saturated",
    }
    assert len(doc["dead"]) == len(doc["saturated"]) == 2
    assert doc["step"] == 30 and doc["epoch"] == 1  # 250 training points in batches of 10: 25 steps an epoch
    frame = client.get(f"/api/sessions/{sid}/frame?grid=32").json()
    assert frame["grid"] == 32 and len(frame["neurons"]) == 2 and len(frame["neurons"][0]) == 8
    assert {"winner", "confidence"} <= set(frame["boundary"]) and frame["layer_sizes"] == [2, 8, 8, 2]
    assert client.get(f"/api/sessions/{sid}/export").text.startswith("# exported from mlpcli playground")
    assert client.get(f"/api/sessions/{sid}/checkpoint").content[:2] == b"PK"


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"model": {"activaton": "relu"}}, "model.activaton"),
        ({"model": {"hidden": [8] * 7}}, "model.hidden"),
        ({"data": {"dataset": "mnist"}}, "data.dataset"),
        ({"optimizer": {"lr": -1}}, "optimizer.lr"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_config_is_a_4xx_naming_the_key(doc, key) -> None:
    response = _client().post("/api/sessions", json=doc)
    assert 400 <= response.status_code < 500 and key in response.json()["error"]


def test_sessions_are_bounded_in_number_and_idle_time() -> None:
    store = Sessions(limit=2, idle=0.5)
    client = _client(store)
    ids = [client.post("/api/sessions", json={"data": {"dataset": "xor"}}).json()["id"] for _ in range(3)]
    assert len(store.items) == 2 and ids[0] not in store.items  # the oldest made room
    time.sleep(0.6)
    response = client.post(f"/api/sessions/{ids[2]}/step", json={"steps": 1})
    assert response.status_code == 404 and "expired" in response.json()["error"]
    assert client.post("/api/sessions/nope/step", json={"steps": 1}).status_code == 404
    sid = client.post("/api/sessions", json={}).json()["id"]
    assert client.post(f"/api/sessions/{sid}/step", json={"steps": 10**9}).status_code == 422


@pytest.mark.parametrize(("dataset", "optimizer"), [("spiral", "adam"), ("moons", "momentum"), ("reg-gauss", "adam")])
def test_an_export_reproduces_the_playground_bit_for_bit(tmp_path, dataset, optimizer) -> None:
    client = _client()
    config = {"data": {"dataset": dataset, "noise": 0.1}, "optimizer": {"name": optimizer, "lr": 0.01}}
    sid = client.post("/api/sessions", json=config).json()["id"]
    epochs = 3
    doc = client.post(f"/api/sessions/{sid}/step", json={"steps": 25 * epochs}).json()
    assert doc["epoch"] == epochs
    (tmp_path / "exported.yaml").write_text(client.get(f"/api/sessions/{sid}/export").text)
    (tmp_path / "session.npz").write_bytes(client.get(f"/api/sessions/{sid}/checkpoint").content)
    result = training.run(
        training.prepare(load_config(tmp_path / "exported.yaml", [f"train.epochs={epochs}"])), tmp_path / "run"
    )
    ours, theirs = checkpoint.load(result.last).params, checkpoint.load(tmp_path / "session.npz").params
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_a_saved_checkpoint_is_read_by_eval_inspect_and_trace(tmp_path) -> None:
    client = _client()
    sid = client.post("/api/sessions", json={"data": {"dataset": "blobs", "classes": 3}}).json()["id"]
    client.post(f"/api/sessions/{sid}/step", json={"steps": 100})
    (tmp_path / "p.npz").write_bytes(client.get(f"/api/sessions/{sid}/checkpoint").content)
    assert json.loads(invoke("eval", str(tmp_path / "p.npz"), "--json").stdout)["n"] == 250
    assert invoke("inspect", str(tmp_path / "p.npz")).exit_code == 0
    traced = json.loads(invoke("trace", "-c", str(tmp_path / "p.npz"), "--input", "0.5,-1", "--json").stdout)
    assert len(traced["output"]) == 3 and abs(sum(traced["output"]) - 1) < 1e-6
    assert client.get(f"/api/sessions/{sid}/frame").json()["confusion"].__len__() == 3


def test_points_from_a_csv_are_a_dataset(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    xy = rng.uniform(-3, 3, (200, 2))
    labels = (xy[:, 0] > 0).astype(int)
    (tmp_path / "mine.csv").write_text(
        "x1,x2,label\n" + "".join(f"{a:.4f},{b:.4f},{c}\n" for (a, b), c in zip(xy, labels))
    )
    result = invoke(
        "train",
        "-c",
        "playground/gauss",
        "--set",
        "data.dataset=mine.csv",
        "--epochs",
        "30",
        "--out",
        "csvrun",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test_accuracy"] > 0.9
    pytest.importorskip("matplotlib")
    assert "boundary.png" in invoke("plot", "csvrun").stdout and (tmp_path / "csvrun" / "boundary.png").is_file()


def test_points_of_ones_own_train_and_export_with_their_csv(tmp_path) -> None:
    client = _client()
    rng = np.random.default_rng(1)
    xy = rng.uniform(-3, 3, (120, 2))
    doc = {"points": {"xy": xy.tolist(), "label": (xy[:, 1] > 0).astype(int).tolist()}, "model": {"hidden": [4]}}
    sid = client.post("/api/sessions", json=doc).json()["id"]
    assert client.post(f"/api/sessions/{sid}/step", json={"steps": 300}).json()["test_accuracy"] > 0.85
    exported = client.get(f"/api/sessions/{sid}/export").text
    assert "dataset: points.csv" in exported and "save it beside this file" in exported
    csv_text = client.get(f"/api/sessions/{sid}/points.csv").text
    assert csv_text.startswith("x1,x2,label\n") and len(csv_text.splitlines()) == 121
    bad = client.post("/api/sessions", json={"points": {"xy": [[0, 0]], "label": [0, 1]}})
    assert bad.status_code == 422 and "points" in bad.json()["error"]


def test_an_activation_per_layer_in_a_session() -> None:
    client = _client()
    doc = {"data": {"dataset": "circle"}, "model": {"hidden": [6, 6], "activation": ["relu", "tanh"]}}
    sid = client.post("/api/sessions", json=doc).json()["id"]
    assert client.post(f"/api/sessions/{sid}/step", json={"steps": 20}).json()["step"] == 20
    assert "- relu\n" in client.get(f"/api/sessions/{sid}/export").text
