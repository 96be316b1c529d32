"""Regression datasets of points (TensorFlow Playground's reg-plane and reg-gauss): their targets, `mlpcli train`
and `eval` of them, and the playground's sessions, frames and exports."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import invoke

from mlpcli.config import config_from_dict
from mlpcli.data import plane
from mlpcli.data.load import PlaneOptions, load_dataset
from mlpcli.data.prepare import validation_split
from mlpcli.errors import MlpcliError
from mlpcli.files import checkpoint
from mlpcli.nn.activations import get_output
from mlpcli.nn.losses import TOLERANCE, SquaredError, count_right
from mlpcli.training import service as training

REGRESSION = ["reg-plane", "reg-gauss"]


def _config(dataset: str, **over: object) -> dict:
    doc = {
        "name": "reg",
        "data": {"dataset": dataset, "points": 400, "validation": 0, "test_ratio": 0.5},
        "model": {"hidden": [8, 8], "activation": "tanh", "output": "linear"},
        "loss": "mse",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 40, "batch_size": 10, "threads": 1},
    }
    doc.update(over)
    return doc


@pytest.mark.parametrize("dataset", REGRESSION)
def test_regression_points_have_float_targets_in_range_and_reproduce(dataset) -> None:
    options = PlaneOptions(points=600, noise=0.1, seed=3)
    a, b = load_dataset(dataset, plane=options), load_dataset(dataset, plane=options)
    assert a.regression and a.classes == ("value",)
    assert a.train_y.dtype == np.float32 and a.train_y.shape == (300,)
    y = np.concatenate([a.train_y, a.test_y])
    assert -1 <= y.min() < -0.5 and 0.5 < y.max() <= 1  # both signs, spread over the range
    np.testing.assert_array_equal(a.train_y, b.train_y)
    np.testing.assert_array_equal(a.train_x, b.train_x)
    other = load_dataset(dataset, plane=PlaneOptions(points=600, noise=0.1, seed=4))
    assert not np.array_equal(a.train_y, other.train_y)
    with pytest.raises(MlpcliError, match="regression dataset"):
        load_dataset(dataset, plane=PlaneOptions(classes=3))


def test_reg_plane_targets_rise_across_the_plane_and_reg_gauss_has_signed_bumps() -> None:
    rng = np.random.default_rng(0)
    xy, t, k = plane.points("reg-plane", 2000, 0.0, None, rng)
    assert k == 0
    np.testing.assert_allclose(t, (xy[:, 0] + xy[:, 1]) / (2 * plane.SCALE), atol=1e-6)
    xy, t, _ = plane.points("reg-gauss", 4000, 0.0, None, rng)
    for cx, cy, sign in plane.BUMPS:  # near each bump's centre the target is its sign
        near = np.hypot(xy[:, 0] - cx * plane.SCALE, xy[:, 1] - cy * plane.SCALE) < 0.2
        assert near.any() and np.all(np.sign(t[near]) == sign) and np.all(np.abs(t[near]) > 0.8)


def test_float_targets_are_one_outputs_values_in_the_loss_and_right_within_the_tolerance() -> None:
    z = np.array([[0.5], [-0.2], [0.9]], np.float32)
    t = np.array([0.45, 0.2, 0.9], np.float32)
    loss, delta = SquaredError()(z.copy(), t, get_output("linear"))
    assert loss == pytest.approx(0.5 * (0.05**2 + 0.4**2 + 0) / 3, rel=1e-5)
    np.testing.assert_allclose(delta[:, 0], (z[:, 0] - t) / 3, rtol=1e-5)
    assert count_right(z, t) == 2 and TOLERANCE == 0.1
    assert count_right(np.array([[0.1, 0.9]]), np.array([1])) == 1  # integer labels: the argmax


def test_a_regression_validation_split_is_random_not_by_value() -> None:
    y = np.linspace(-1, 1, 1000).astype(np.float32)
    train, val = validation_split(y, 200, np.random.default_rng(0))
    assert len(val) == 200 and len(np.intersect1d(train, val)) == 0 and len(train) == 800
    assert y[val].min() < -0.8 and y[val].max() > 0.8  # drawn from the whole range, not the lowest values


@pytest.mark.parametrize("dataset", REGRESSION)
def test_train_fits_a_regression_dataset_and_eval_reads_it(tmp_path, dataset) -> None:
    p = training.prepare(config_from_dict(_config(dataset), "config"))
    result = training.run(p, tmp_path / "run")
    rows = p.history.rows
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] / 2
    ckpt = checkpoint.load(result.checkpoint)
    assert ckpt.classes == ["value"]
    out = invoke("eval", str(result.checkpoint), "--json")
    assert out.exit_code == 0, out.output
    import json

    doc = json.loads(out.stdout)
    assert doc["per_class"] == [] and doc["confusion_matrix"] == [] and 0 <= doc["accuracy"] <= 1
    assert doc["loss"] < 0.05
    text = invoke("eval", str(result.checkpoint))
    assert text.exit_code == 0 and "within 0.1 of the target" in text.output


def test_a_regression_dataset_with_a_classifiers_head_is_one_clear_error(tmp_path) -> None:
    cfg = config_from_dict(_config("reg-plane", loss="cross_entropy", model={"hidden": [4], "output": "softmax"}), "c")
    with pytest.raises(MlpcliError, match="regression dataset.*loss: mse and model.output: linear"):
        training.prepare(cfg)


pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from mlpcli.serve.playground import frames  # noqa: E402
from mlpcli.serve.playground.app import create_app  # noqa: E402


def _client() -> TestClient:
    return TestClient(create_app(), base_url="http://127.0.0.1:8001")


@pytest.mark.parametrize("dataset", REGRESSION)
def test_a_playground_session_fits_a_regression_dataset_and_draws_its_value(dataset) -> None:
    client = _client()
    meta = client.get("/api/datasets").json()
    assert set(REGRESSION) <= set(meta["datasets"]) and meta["regression"] == REGRESSION
    sid = client.post("/api/sessions", json={"data": {"dataset": dataset}}).json()["id"]  # head chosen for it
    first = client.post(f"/api/sessions/{sid}/step", json={"steps": 0}).json()
    last = client.post(f"/api/sessions/{sid}/step", json={"steps": 3000}).json()
    assert last["test_loss"] < first["test_loss"] / 3
    points = client.get(f"/api/sessions/{sid}/points").json()
    assert points["regression"] and any(v not in (0, 1) for v in points["train"]["label"])
    with client.websocket_connect(f"ws://127.0.0.1:8001/api/sessions/{sid}/live") as ws:
        message = ws.receive()
        while message.get("bytes") is None:
            message = ws.receive()
    header, _, maps = frames.decode(message["bytes"])
    g = header["grid"]
    assert header["regression"] and header["classes"] == 1
    assert maps[: g * g] == bytes(g * g)  # no winner class
    value = np.frombuffer(maps[g * g : 2 * g * g], np.uint8)
    assert value.min() < 60 and value.max() > 195  # the output's value, both signs, on the diverging scale
    preview = client.get(f"/api/preview?dataset={dataset}").json()
    assert preview["regression"] and min(preview["label"]) < 0


def test_a_playground_regression_session_refuses_a_classifiers_head() -> None:
    client = _client()
    doc = {"data": {"dataset": "reg-plane"}, "loss": "cross_entropy", "model": {"output": "softmax"}}
    res = client.post("/api/sessions", json=doc)
    assert 400 <= res.status_code < 500 and "loss: mse and model.output: linear" in res.json()["error"]
