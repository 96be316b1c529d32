"""The lecture's math, computed for display: traces of small networks, gradient checks, inspection."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlpcli.config import ExperimentConfig
from mlpcli.factory import build_model
from mlpcli.files.checkpoint import Checkpoint
from mlpcli.lecture.network_file import NetworkSpec
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.gradcheck import check_gradients
from mlpcli.nn.layout import count_parameters
from mlpcli.nn.losses import pairings
from mlpcli.nn.mlp import MLP

GRADCHECK_TOLERANCE = 1e-5


def network_model(spec: NetworkSpec) -> MLP:
    """The float64 MLP of an explicit network (W transposed into mlpcli's (fan_in, fan_out) layout)."""
    params: dict[str, np.ndarray] = {}
    for l, layer in enumerate(spec.layers, start=1):
        params[f"W{l}"] = np.array(layer.W, dtype=np.float64).T
        params[f"b{l}"] = np.array(layer.b, dtype=np.float64)
    return MLP(spec.layer_sizes(), spec.activation, spec.output, params=params, dtype=np.float64)


def trace(spec: NetworkSpec, x: list[float], target: list[float] | None = None, lr: float = 0.5) -> dict[str, Any]:
    """Forward pass layer by layer (z = W a + b, a = f(z)); with a target, the deltas, gradients and one SGD step.

    Matrices are reported in the lecture's W x form (row j = neuron j).
    """
    model = network_model(spec)
    sizes = model.layer_sizes
    if len(x) != sizes[0]:
        raise ValueError(f"the input has {len(x)} values but the network takes {sizes[0]}")
    a_prev = np.array(x, dtype=np.float64)
    acts = model.layer_activations(a_prev[None, :])
    layers: list[dict[str, Any]] = []
    for l in range(1, model.num_layers + 1):
        W = model.params[f"W{l}"].T
        b = model.params[f"b{l}"]
        z = W @ a_prev + b
        a = acts[l - 1][0]
        layers.append(
            {
                "layer": l,
                "activation": spec.output if l == model.num_layers else spec.activation,
                "W": W.tolist(),
                "b": b.tolist(),
                "input": a_prev.tolist(),
                "z": z.tolist(),
                "a": a.tolist(),
            }
        )
        a_prev = a
    result: dict[str, Any] = {"input": list(x), "output": acts[-1][0].tolist(), "layers": layers}
    if target is None:
        return result
    if len(target) != sizes[-1]:
        raise ValueError(f"the target has {len(target)} values but the network has {sizes[-1]} outputs")
    t = np.array([target], dtype=np.float64)
    loss, grads = model.loss_and_grads(np.array([x], dtype=np.float64), t, spec.loss)
    result.update({"target": list(target), "loss_name": spec.loss, "loss": loss, "lr": lr})
    for l, info in enumerate(layers, start=1):
        dW = grads[f"W{l}"].T  # dE/dW_ji = delta_j a_i, in W x form
        db = grads[f"b{l}"]  # with one sample, dE/db = delta
        info.update(
            {
                "delta": db.tolist(),
                "dE_dW": dW.tolist(),
                "dE_db": db.tolist(),
                "W_new": (np.array(info["W"]) - lr * dW).tolist(),
                "b_new": (np.array(info["b"]) - lr * db).tolist(),
            }
        )
    return result


def trace_graph(x: float = -2.0, y: float = 5.0, z: float = -4.0) -> dict[str, float]:
    """The lecture's computational graph f(x, y, z) = (x + y) z: forward values and the chain rule backwards."""
    q = x + y
    f = q * z
    df_dq, df_dz = z, q  # local gradients of the product
    df_dx = df_dq * 1.0  # dq/dx = 1
    df_dy = df_dq * 1.0  # dq/dy = 1
    return {
        "x": x,
        "y": y,
        "z": z,
        "q": q,
        "f": f,
        "df_df": 1.0,
        "df_dq": df_dq,
        "df_dz": df_dz,
        "df_dx": df_dx,
        "df_dy": df_dy,
    }


def gradcheck_config(cfg: ExperimentConfig, samples: int = 8, per_tensor: int = 40, seed: int = 0) -> dict[str, float]:
    """Check the configured network (float64) on a small random batch; at most per_tensor entries per tensor."""
    rng = np.random.default_rng(seed)
    m = cfg.model
    model = build_model(m, cfg.layer_sizes(), dtype=np.float64, rng=rng)
    for name, p in model.params.items():  # non-zero biases, so their gradients are exercised too
        if name.startswith("b"):
            p[:] = rng.normal(0, 0.1, size=p.shape)
    x = rng.normal(size=(samples, model.layer_sizes[0]))
    targets = _targets(m.output, cfg.loss, samples, model.layer_sizes[-1], rng)
    masks: dict[int, np.ndarray] = {}  # fixed dropout masks make the loss a deterministic function
    for layer, (p, size) in enumerate(zip([m.input_dropout] + [m.dropout] * len(m.hidden), model.layer_sizes[:-1])):
        if p > 0:
            masks[layer] = (rng.random((samples, size)) >= p) / (1 - p)
    return check_gradients(
        model,
        x,
        targets,
        cfg.loss,
        weight_decay=cfg.optimizer.weight_decay,
        l1=cfg.optimizer.l1,
        masks=masks or None,
        max_entries=per_tensor,
        rng=rng,
    )


def _targets(output: str, loss: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if loss == "cross_entropy":
        return rng.integers(0, k, size=n)
    return rng.normal(size=(n, k)) if output == "linear" else rng.uniform(0, 1, size=(n, k))


def gradcheck_all(seed: int = 0) -> list[dict[str, Any]]:
    """Every hidden activation x every valid (output, loss) pairing on a small 4-5-3-3 network, every entry."""
    rows = []
    for activation in ACTIVATIONS:
        for output, loss in pairings():
            rng = np.random.default_rng(seed)
            model = MLP([4, 5, 3, 3], activation, output, dtype=np.float64).init(rng, "xavier")
            for name, p in model.params.items():
                if name.startswith("b"):
                    p[:] = rng.normal(0, 0.5, size=p.shape)
            x = rng.normal(size=(6, 4)) * 2
            errors = check_gradients(model, x, _targets(output, loss, 6, 3, rng), loss)
            rows.append({"activation": activation, "output": output, "loss": loss, "errors": errors})
    return rows


def architecture(layer_sizes: list[int], activation: str | list[str], output: str) -> dict[str, Any]:
    """Per layer: W's shape (lecture form, neurons x inputs), weights, biases, activation (one name, or one per
    hidden layer); and totals."""
    names = [activation] * (len(layer_sizes) - 2) if isinstance(activation, str) else list(activation)
    layers = []
    for l in range(1, len(layer_sizes)):
        w, b, t = count_parameters(layer_sizes[l - 1 : l + 1])
        layers.append(
            {
                "layer": l,
                "W_shape": [layer_sizes[l], layer_sizes[l - 1]],
                "weights": w,
                "biases": b,
                "parameters": t,
                "activation": output if l == len(layer_sizes) - 1 else names[l - 1],
            }
        )
    w, b, t = count_parameters(layer_sizes)
    return {
        "layer_sizes": layer_sizes,
        "layers": layers,
        "weights": w,
        "biases": b,
        "parameters": t,
        "neurons": sum(layer_sizes[1:]),  # the lecture does not count the inputs as neurons
    }


def weight_stats(ckpt: Checkpoint, near_zero: float = 1e-3) -> list[dict[str, Any]]:
    """Mean, std, min, max and the fraction of |w| < near_zero for every parameter array."""
    out = []
    for name, arr in ckpt.params.items():
        a = arr.astype(np.float64)
        out.append(
            {
                "name": name,
                "shape": list(arr.shape),
                "mean": float(a.mean()),
                "std": float(a.std()),
                "min": float(a.min()),
                "max": float(a.max()),
                "near_zero": float(np.mean(np.abs(a) < near_zero)),
            }
        )
    return out


def weight_templates(params: dict[str, np.ndarray], limit: int | None = None) -> dict[str, Any]:
    """The first layer's incoming weight vectors as square images, strongest-contributing units first.

    A hidden unit j's contribution is ||W1[:, j]|| * ||W2[j, :]|| (how much it can move the next layer);
    with no hidden layer the templates are the classes' own weight vectors, in class order.
    Inputs that are not a square image (a toy network) have no templates: kind "matrices".
    """
    W1 = params["W1"].astype(np.float64)  # (inputs, units)
    side = int(round(np.sqrt(W1.shape[0])))
    if side * side != W1.shape[0]:
        return {"kind": "matrices", "side": None, "units": []}
    incoming = np.linalg.norm(W1, axis=0)
    if "W2" in params:
        score = incoming * np.linalg.norm(params["W2"].astype(np.float64), axis=1)
        order = np.argsort(-score, kind="stable")
        kind = "hidden"
    else:
        score, order, kind = incoming, np.arange(W1.shape[1]), "classes"
    units = [
        {"unit": int(j), "score": float(score[j]), "template": W1[:, j].reshape(side, side)} for j in order[:limit]
    ]
    return {"kind": kind, "side": side, "units": units}
