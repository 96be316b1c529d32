"""A playground session's config: the playground's defaults and limits, points sent by the page, files opened
by the page (a YAML config or a checkpoint), and the picker's previews."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.config import ExperimentConfig, config_from_dict
from mlpcli.config_numbers import FLOAT32_MAX
from mlpcli.data.plane import is_plane, is_regression
from mlpcli.errors import ConfigError, MlpcliError
from mlpcli.inference.boundary import bounds_of

LIMITS = {"hidden_layers": 6, "neurons": 32, "points": 5000, "grid": 128}
DIGITS = "mnist-sample"
DEFAULTS: dict[str, Any] = {
    "name": "playground",
    "data": {"dataset": "spiral", "points": 500, "noise": 0.0, "validation": 0, "test_ratio": 0.5},
    "model": {"hidden": [8, 8], "activation": "tanh", "init": "xavier"},
    "optimizer": {"name": "adam", "lr": 0.01},
    "schedule": {"name": "constant"},
    "train": {"epochs": 100000, "batch_size": 10, "threads": 1},
}


def _merge(base: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in doc.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_points(doc: Any, folder: Path) -> Path:
    """Points the page sent ({"xy": [[x1, x2], ...], "label": [...]}: uploaded or clicked) as an x1,x2,label CSV.

    ConfigError unless there are 2 to LIMITS["points"] points, each two numbers finite in float32 and a whole
    label from 0 to 9 (checked before anything is allocated)."""
    shape = 'points: expected {"xy": [[x1, x2], ...], "label": [...]}'
    if not isinstance(doc, dict) or not isinstance(doc.get("xy"), list) or not isinstance(doc.get("label"), list):
        raise ConfigError(shape)
    xy, labels = doc["xy"], doc["label"]
    if len(xy) != len(labels) or not 2 <= len(xy) <= LIMITS["points"]:
        raise ConfigError(f"points: 2 to {LIMITS['points']} points, each with a label")
    for p in xy:
        if not isinstance(p, list) or len(p) != 2:
            raise ConfigError(shape)
        for v in p:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= FLOAT32_MAX:
                raise ConfigError(f"points: coordinates are numbers finite in float32 (got {str(v)[:40]})")
    for c in labels:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 9:
            raise ConfigError(f"points: labels are whole numbers from 0 to 9 (got {str(c)[:40]})")
    coords = np.asarray(xy, dtype=np.float64)
    path = folder / "points.csv"
    path.write_text("x1,x2,label\n" + "".join(f"{a:.6g},{b:.6g},{c}\n" for (a, b), c in zip(coords, labels)))
    return path


def playground_config(doc: Any, folder: Path | None = None) -> ExperimentConfig:
    """The config of a session: the document's keys over the playground's defaults; ConfigError naming a key.

    A "points" key holds points of the user's own (written as a CSV in folder, the session's own)."""
    if not isinstance(doc, dict):
        raise ConfigError("the session's config must be a JSON object of config keys")
    doc = dict(doc)
    for key, value in doc.items():  # a section that is not a mapping is named before anything reads it
        if isinstance(DEFAULTS.get(key), dict) and not isinstance(value, dict):
            raise ConfigError(f"{key}: a JSON object of its keys (got {type(value).__name__})")
    points = doc.pop("points", None)
    if points is not None:
        if folder is None:
            raise ConfigError("points: not accepted here")
        data = dict(doc.get("data") or {})
        data["dataset"] = str(write_points(points, folder))
        doc["data"] = data
    raw = _merge(DEFAULTS, doc)
    dataset = raw.get("data", {}).get("dataset")
    if isinstance(dataset, str) and is_regression(dataset):  # one linear output and squared error, unless given
        raw.setdefault("loss", "mse")
        raw["model"] = {"output": "linear", **raw["model"]}
    if dataset == DIGITS:  # digits mode: a small MLP on the shipped sample
        raw["data"] = {**raw["data"], "validation": 0}
        raw["model"] = {**DEFAULTS["model"], "hidden": [32], "activation": "relu", **(doc.get("model") or {})}
    cfg = config_from_dict(raw, "config")
    if not (is_plane(cfg.data.dataset) or cfg.data.dataset == DIGITS):
        raise ConfigError(
            f"data.dataset: the playground trains points in the plane or {DIGITS}, not {cfg.data.dataset!r}"
        )
    if len(cfg.model.hidden) > LIMITS["hidden_layers"] or any(h > LIMITS["neurons"] for h in cfg.model.hidden):
        raise ConfigError(
            f"model.hidden: at most {LIMITS['hidden_layers']} hidden layers of {LIMITS['neurons']} neurons here"
        )
    if cfg.data.points > LIMITS["points"]:
        raise ConfigError(f"data.points: at most {LIMITS['points']} in the playground")
    if cfg.train.threads != 1:
        raise ConfigError("train.threads: the playground trains on one thread (so its runs reproduce)")
    return cfg


def imported(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """A file the page opens: an mlpcli config (YAML, e.g. an export) or a checkpoint (.npz) of a model of points
    in the plane. Returns (the config document for a session, the checkpoint's weights or None); ConfigError
    saying what the file is not."""
    from mlpcli.config import read_yaml
    from mlpcli.files import checkpoint

    with tempfile.TemporaryDirectory(prefix="mlpcli-import-") as tmp:
        if data[:2] == b"PK":
            path = Path(tmp) / "checkpoint.npz"
            path.write_bytes(data)
            try:
                ckpt = checkpoint.load(path)
            except MlpcliError as exc:
                raise ConfigError(f"not a checkpoint mlpcli can read: {exc}") from None
            raw, params = dict(ckpt.config), ckpt.params
            if not raw:
                raise ConfigError("the checkpoint holds no config (it was not trained by mlpcli train)")
        else:
            path = Path(tmp) / "config.yaml"
            path.write_bytes(data)
            raw, params = read_yaml(path), None
    if not isinstance(raw, dict):
        raise ConfigError("the file is not an mlpcli config (a YAML mapping of config keys)")
    raw["train"] = {**(raw.get("train") or {}), "threads": 1}
    raw.pop("name", None)
    dataset = str((raw.get("data") or {}).get("dataset", ""))
    if dataset.endswith(".csv"):
        raise ConfigError(f"it trains on {dataset}: open that file with 'your points', then choose the same settings")
    return playground_config(raw).model_dump(mode="json"), params  # Sessions.create checks the weights' shapes


def preview(dataset: str, noise: float = 0.0, points: int = 200) -> dict[str, Any]:
    """A dataset's points, for the picker's previews."""
    cfg = playground_config({"data": {"dataset": dataset, "noise": noise, "points": points}})
    from mlpcli.data.load import PlaneOptions, load_dataset

    d = load_dataset(cfg.data.dataset, plane=PlaneOptions.of(cfg.data, cfg.seed))
    xy = np.concatenate([d.train_xy, d.test_xy])
    return {
        "xy": xy.round(3).tolist(),
        "label": np.concatenate([d.train_y, d.test_y]).round(4).tolist(),
        "bounds": bounds_of(xy),
        "regression": d.regression,
    }
