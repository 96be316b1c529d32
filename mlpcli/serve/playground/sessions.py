"""Playground sessions: a config prepared once, stepped by training.loop.Stepper, drawn as frames.

A session is exactly `mlpcli train` of its config, one optimizer step at a time (the same data, the
same random streams, one BLAS thread): after E whole epochs its weights are those of
`mlpcli train -c exported.yaml --epochs E` when the schedule does not depend on the number of epochs
(constant or step; the playground's default is constant). Sessions are bounded: MAX_SESSIONS at
once (the least recently used one is closed for a new one), IDLE_SECONDS without a request, and
networks and datasets of playground size (LIMITS).
"""

from __future__ import annotations

import base64
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.config import ExperimentConfig, dump_config
from mlpcli.config_numbers import FLOAT32_MAX
from mlpcli.errors import ConfigError, MlpcliError
from mlpcli.factory import build_optimizer
from mlpcli.inference.boundary import bounds_of
from mlpcli.inference.metrics import evaluate_arrays
from mlpcli.lecture.diagnostics import layer_diagnostics, unit_health
from mlpcli.serve.playground import frames
from mlpcli.serve.playground.setup import DIGITS, LIMITS, playground_config
from mlpcli.training import service as training
from mlpcli.training.loop import LoopSettings, Stepper, folds_rate
from mlpcli.training.snapshot import save

MAX_SESSIONS = 16
IDLE_SECONDS = 600.0
MAX_STEPS = 5000  # optimizer steps in one request


def _bytes(a: np.ndarray) -> str:
    """An array of values in [0, 1] as base64 bytes 0-255 (a heat map, compact for the page)."""
    return base64.b64encode(np.clip(np.rint(a * 255), 0, 255).astype(np.uint8).tobytes()).decode("ascii")


_CONTROLLER: list[Any] = []


def _blas() -> Any:
    """threadpoolctl's controller, made once (finding the BLAS libraries costs ~0.5 ms; limiting then 0.01 ms)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


class Session:
    """One tab's training: a prepared config, its optimizer and its Stepper."""

    def __init__(self, cfg: ExperimentConfig, folder: tempfile.TemporaryDirectory | None = None) -> None:
        from threadpoolctl import threadpool_limits

        self.folder = folder  # the session's own files (uploaded points), removed with it
        self.id = uuid.uuid4().hex
        self.cfg = cfg
        self.lock = threading.Lock()
        self.touched = time.monotonic()
        with threadpool_limits(1):
            self.p = training.prepare(cfg)
        self.settings = LoopSettings.from_config(cfg, self.p.val)
        self.optimizer = build_optimizer(cfg.optimizer, self.p.model, fold=folds_rate(self.settings))
        self.stepper = Stepper(self.p.model, self.optimizer, self.p.batches, self.settings, self.p.state)
        self.steps = 0
        self.digits = cfg.data.dataset == DIGITS
        d = self.p.dataset
        self.bounds = None if self.digits else bounds_of(d.train_xy, d.test_xy)
        self._grid: np.ndarray | None = None  # the boundary grid's features, normalized (plane_frame)
        self._train_inputs: np.ndarray | None = None
        self.live: list[Any] = []  # live.Live workers training it for open pages

    def step(self, count: int) -> dict[str, Any]:
        """Run count optimizer steps (fewer when the run's epochs end); the metrics after them."""

        if not 0 <= count <= MAX_STEPS:
            raise MlpcliError(f"steps: from 0 to {MAX_STEPS} at a time (got {count})")
        self.advance(count)
        dead, saturated = self.health()
        return {**self.metrics(), "dead": dead, "saturated": saturated}

    def advance(self, count: int) -> int:
        """Run up to count optimizer steps (fewer when the run's epochs end), BLAS on one thread; the number run."""
        ran = 0
        with _blas().limit(limits=1):
            while ran < count and not self.stepper.done:
                self.stepper.step()
                self.steps += 1
                ran += 1
        return ran

    def health(self) -> tuple[list[float], list[float]]:
        """(dead, saturated): per hidden layer, the fraction of its units that are dead and saturated on the
        training points (the registry's rules: ActivationSpec.dead, .saturated)."""
        return unit_health(self.p.model, self.train_inputs)

    @property
    def train_inputs(self) -> np.ndarray:
        """The training points' inputs, normalized as the network sees them (at most 5,000; made once)."""
        if self._train_inputs is None:
            self._train_inputs = self.p.normalizer.apply(self.p.dataset.train_x[:5000])
        return self._train_inputs

    def metrics(self) -> dict[str, Any]:
        """Step, epoch, and the loss and accuracy on the training and test splits."""
        d, p = self.p.dataset, self.p
        train = evaluate_arrays(p.model, p.normalizer, d.train_x, d.train_y, self.cfg.loss)
        test = evaluate_arrays(p.model, p.normalizer, d.test_x, d.test_y, self.cfg.loss) if len(d.test_y) else None
        return {
            "step": self.steps,
            "epoch": self.p.state.epoch,
            "train_loss": train.loss,
            "test_loss": test.loss if test else None,
            "train_accuracy": train.accuracy,
            "test_accuracy": test.accuracy if test else None,
        }

    def set_rate(self, lr: float) -> None:
        """Change the learning rate while it trains (the schedule scales from the new base rate); MlpcliError
        unless it is > 0 and finite in float32 (as the config's optimizer.lr)."""
        if not 0 < lr <= FLOAT32_MAX:
            raise MlpcliError(f"optimizer.lr: must be > 0 and finite in float32 (got {lr})")
        self.optimizer.base_lr = float(lr)

    def set_weight(self, layer: int, i: int, j: int, value: float) -> None:
        """Edit one weight: W^layer from input i to neuron j (the lecture's W[j][i])."""
        W = self.p.model.params.get(f"W{layer}")
        if W is None or not (0 <= i < W.shape[0] and 0 <= j < W.shape[1]) or not np.isfinite(value):
            raise MlpcliError(f"no weight W{layer}[{j}][{i}] in this network (or the value is not finite)")
        W[i, j] = value

    def set_weight_doc(self, doc: Any) -> None:
        """Edit one weight given as {"layer", "i", "j", "value"} (whole numbers, and a number finite in the
        network's float type); MlpcliError naming what is wrong."""
        if not isinstance(doc, dict) or set(doc) != {"layer", "i", "j", "value"}:
            raise MlpcliError('weight: {"layer", "i", "j", "value"}')
        index = [doc[k] for k in ("layer", "i", "j")]
        if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**31 for v in index):
            raise MlpcliError("weight: layer, i and j are whole numbers")
        value = doc["value"]
        dtype = self.p.model.dtype
        with np.errstate(over="ignore"):
            ok = not isinstance(value, bool) and isinstance(value, (int, float)) and np.isfinite(dtype.type(value))
        if not ok:
            raise MlpcliError(f"weight: the value must be a number finite in {np.dtype(dtype).name}")
        self.set_weight(index[0], index[1], index[2], float(value))

    def points(self) -> dict[str, Any]:
        """The training and test points (plane) to draw."""
        d = self.p.dataset
        return {
            "train": {"xy": d.train_xy.round(4).tolist(), "label": d.train_y.tolist()},
            "test": {"xy": d.test_xy.round(4).tolist(), "label": d.test_y.tolist()},
            "bounds": self.bounds,
            "classes": list(d.classes),
            "features": list(self.cfg.data.features),
            "regression": d.regression,
        }

    def frame(self, size: int = 64) -> dict[str, Any]:
        """What the page draws now: metrics, weights, unit health, and (plane) the boundary and every neuron's
        output over a size x size grid, or (digits) first-layer templates, the confusion matrix, test digits."""
        if not 8 <= size <= LIMITS["grid"]:
            raise MlpcliError(f"grid: from 8 to {LIMITS['grid']} (got {size})")
        model, p, d = self.p.model, self.p, self.p.dataset
        doc: dict[str, Any] = {"metrics": self.metrics(), "layer_sizes": model.layer_sizes}
        doc["weights"] = [np.round(model.params[f"W{l}"], 4).tolist() for l in range(1, model.num_layers + 1)]
        doc["biases"] = [np.round(model.params[f"b{l}"], 4).tolist() for l in range(1, model.num_layers + 1)]
        sample = p.normalizer.apply(d.train_x[:1000])
        doc["health"] = {k: float(v) for k, v in layer_diagnostics(model, sample).items()}
        test = evaluate_arrays(model, p.normalizer, d.test_x, d.test_y, self.cfg.loss, full=True)
        doc["confusion"] = test.confusion.tolist()
        if self.digits:
            W1 = model.params["W1"]
            doc["templates"] = [
                _bytes((W1[:, j] - W1[:, j].min()) / max(float(np.ptp(W1[:, j])), 1e-12)) for j in range(W1.shape[1])
            ]
            probs = model.predict_proba(p.normalizer.apply(d.test_x[:12]))
            doc["digits"] = [
                {
                    "image": _bytes(d.test_x[i] / 255.0),
                    "label": int(d.test_y[i]),
                    "top": [[int(c), float(probs[i, c])] for c in np.argsort(-probs[i])[:3]],
                }
                for i in range(len(probs))
            ]
            return doc
        from mlpcli.data.plane import features

        x0, x1, y0, y1 = self.bounds
        gx, gy = np.meshgrid(np.linspace(x0, x1, size), np.linspace(y0, y1, size))
        xy = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
        acts = model.layer_activations(p.normalizer.apply(features(xy, self.cfg.data.features)))
        out = acts[-1]
        doc["boundary"] = {"winner": _bytes(out.argmax(axis=1) / 255.0), "confidence": _bytes(out.max(axis=1))}
        doc["neurons"] = []
        for a in acts[:-1]:
            lo, hi = a.min(axis=0), a.max(axis=0)
            scaled = (a - lo) / np.maximum(hi - lo, 1e-12)
            doc["neurons"].append(
                [{"map": _bytes(scaled[:, j]), "min": float(lo[j]), "max": float(hi[j])} for j in range(a.shape[1])]
            )
        doc["grid"] = size
        return doc

    def deltas(self) -> dict[str, float]:
        """The output delta's mean size on the training points two ways (lecture: the delta rule): through a
        sigmoid with squared error, |o (1 - o) (o - t)|, which shrinks as o saturates, and with cross-entropy,
        |o - t|, which does not; o the network's outputs, t the one-hot targets."""
        d = self.p.dataset
        with np.errstate(all="ignore"):
            o = self.p.model.forward(self.train_inputs).astype(np.float64)
        if d.regression:  # one output and its targets
            t = d.train_y[: len(o)].astype(np.float64)[:, None]
        else:
            t = np.zeros_like(o)
            t[np.arange(len(o)), d.train_y[: len(o)]] = 1.0
        return {
            "sigmoid_mse": frames.finite(float(np.mean(np.abs(o * (1 - o) * (o - t))))) or 0.0,
            "cross_entropy": frames.finite(float(np.mean(np.abs(o - t)))) or 0.0,
        }

    def plane_frame(self, focus: tuple[int, int] | None = None) -> bytes:
        """The frame the live page paints (frames.py's layout): metrics, unit health, the parameters, the
        boundary at frames.GRID, every hidden unit's map at frames.MAP, and the focused (layer, unit)'s map at
        frames.GRID. MlpcliError in digits mode (no plane)."""
        if self.digits:
            raise MlpcliError("digits mode has no plane to draw")
        model, p = self.p.model, self.p
        if self._grid is None:
            from mlpcli.data.plane import features

            x0, x1, y0, y1 = self.bounds
            gx, gy = np.meshgrid(np.linspace(x0, x1, frames.GRID), np.linspace(y0, y1, frames.GRID))
            xy = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
            self._grid = p.normalizer.apply(features(xy, self.cfg.data.features))
        with np.errstate(all="ignore"):
            acts = model.layer_activations(self._grid)
            if not all(np.isfinite(a).all() for a in acts):  # diverged: draw what is finite
                acts = [np.nan_to_num(a, nan=0.0) for a in acts]
        out = acts[-1]
        g, m = frames.GRID, frames.MAP
        pick = np.rint(np.linspace(0, g - 1, m)).astype(int)
        if self.p.dataset.regression:  # the output's value on the units' diverging scale; no winner
            maps = [np.zeros(g * g, np.uint8), frames.scaled_units(out[:, 0])]
        else:
            maps = [out.argmax(axis=1).astype(np.uint8), frames.scaled_units(frames.confidence(out) * 2 - 1)]
        for a in acts[:-1]:
            small = a.reshape(g, g, -1)[np.ix_(pick, pick)]
            maps.append(frames.scaled_units(np.moveaxis(small, 2, 0)))
        layer_sizes = model.layer_sizes
        if focus is not None:
            layer, unit = focus
            if 1 <= layer < len(layer_sizes) - 1 and 0 <= unit < layer_sizes[layer]:
                maps.append(frames.scaled_units(acts[layer - 1][:, unit]))
            else:
                focus = None
        metrics = {k: frames.finite(v) if isinstance(v, float) else v for k, v in self.metrics().items()}
        dead, saturated = self.health()
        header = {
            **metrics,
            "dead": dead,
            "saturated": saturated,
            "deltas": self.deltas(),
            "layer_sizes": layer_sizes,
            "grid": g,
            "map": m,
            "classes": int(out.shape[1]),
            "regression": self.p.dataset.regression,
            "focus": list(focus) if focus is not None else None,
            "lr": self.optimizer.base_lr,
            "done": self.stepper.done,
        }
        params = [model.params[f"{kind}{l}"] for l in range(1, model.num_layers + 1) for kind in ("W", "b")]
        return frames.encode(header, params, maps)

    def live_frame(self, focus: tuple[int, int] | None = None) -> bytes | str:
        """What the live page gets: plane_frame's bytes, or in digits mode frame()'s JSON as text."""
        if self.digits:
            return json.dumps({"kind": "digits", **self.frame(64)})
        return self.plane_frame(focus)

    def stop(self) -> None:
        """End what trains this session live (its pages' workers)."""
        for live in list(self.live):
            live.close()
        self.live.clear()

    def export_yaml(self) -> str:
        """The session as an mlpcli config: `mlpcli train -c it.yaml --epochs E` repeats E playground epochs."""
        head = (
            f"# exported from mlpcli playground after {self.p.state.epoch} whole epochs ({self.steps} steps)\n"
            f"#   mlpcli train -c THIS.yaml --epochs {max(self.p.state.epoch, 1)}\n"
        )
        cfg = self.cfg
        if self.custom_points:  # the user's points: saved beside the YAML as points.csv (GET .../points.csv)
            head += "# the points are the playground's points.csv: save it beside this file\n"
            cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"dataset": "points.csv"})})
        return head + dump_config(cfg)

    @property
    def custom_points(self) -> bool:
        """Whether the session trains on points the page sent (uploaded or clicked)."""
        return self.folder is not None and Path(self.cfg.data.dataset).parent == Path(self.folder.name)

    def points_csv(self) -> str:
        """The session's points (training and test) as an x1,x2,label CSV."""
        d = self.p.dataset
        rows = [(xy, y) for xs, ys in ((d.train_xy, d.train_y), (d.test_xy, d.test_y)) for xy, y in zip(xs, ys)]
        return "x1,x2,label\n" + "".join(f"{a:.6g},{b:.6g},{c}\n" for (a, b), c in rows)

    def checkpoint(self) -> bytes:
        """The session now as an mlpcli checkpoint (.npz) that eval, inspect and trace read."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.npz"
            save(self.p, path, self.optimizer.state_dict(), self.p.history.rows[-1] if self.p.history.rows else None)
            return path.read_bytes()


class Sessions:
    """The server's sessions, bounded in number and idle time."""

    def __init__(self, limit: int = MAX_SESSIONS, idle: float = IDLE_SECONDS) -> None:
        self.limit, self.idle = limit, idle
        self.items: dict[str, Session] = {}
        self.lock = threading.Lock()

    def create(self, doc: Any, params: dict[str, np.ndarray] | None = None) -> Session:
        """A new session for a config document (the oldest idle one closed when the limit is reached), starting
        from the weights params when given (an opened checkpoint's)."""
        folder = tempfile.TemporaryDirectory(prefix="mlpcli-playground-")
        try:
            session = Session(playground_config(doc, Path(folder.name)), folder)
            if params is not None:
                model = session.p.model
                if set(params) != set(model.params) or any(model.params[k].shape != v.shape for k, v in params.items()):
                    raise ConfigError("the checkpoint's weights do not fit the network of its config")
                for name, value in params.items():  # into the buffer the optimizer and the Stepper hold
                    model.params[name][...] = value
        except BaseException:
            folder.cleanup()
            raise
        with self.lock:
            self._expire()
            if len(self.items) >= self.limit:
                oldest = min(self.items.values(), key=lambda s: s.touched)
                self._drop(oldest.id)
            self.items[session.id] = session
        return session

    def get(self, sid: str) -> Session:
        """The session with this id; MlpcliError (404) when it does not exist or expired."""
        with self.lock:
            self._expire()
            session = self.items.get(sid)
        if session is None:
            raise KeyError(sid)
        session.touched = time.monotonic()
        return session

    def close(self, sid: str) -> None:
        """Forget a session."""
        with self.lock:
            self._drop(sid)

    def _drop(self, sid: str) -> None:
        session = self.items.pop(sid, None)
        if session is not None:
            session.stop()
            if session.folder is not None:
                session.folder.cleanup()

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [s.id for s in self.items.values() if now - s.touched > self.idle]:
            self._drop(sid)
