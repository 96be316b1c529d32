"""inspect, gradcheck and trace: the lecture's numbers through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke

from mlpcli.config import load_config
from mlpcli.errors import ConfigError
from mlpcli.lecture.network_file import load_network
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.losses import COMPATIBLE_OUTPUTS

CONFIGS = Path(__file__).parent.parent / "configs"
TOY = str(CONFIGS / "toy.yaml")


def test_trace_forward_reproduces_the_lecture() -> None:
    doc = json.loads(invoke("trace", "--config", TOY, "--input", "1,-1", "--json").stdout)
    assert doc["layers"][0]["z"] == pytest.approx([4, -2])
    assert doc["layers"][0]["a"] == pytest.approx([0.98201379, 0.11920292], abs=1e-8)
    assert doc["layers"][1]["a"] == pytest.approx([0.86, 0.11], abs=5e-3)
    assert doc["output"] == pytest.approx([0.61770478, 0.82912398], abs=1e-8)
    doc = json.loads(invoke("trace", "--config", TOY, "--input", "0,0", "--json").stdout)
    assert doc["output"] == pytest.approx([0.51184738, 0.85438390], abs=1e-8)


def test_trace_backward_follows_the_delta_rule() -> None:
    doc = json.loads(invoke("trace", "-c", TOY, "-x", "1,-1", "-t", "0,1", "--lr", "0.5", "--json").stdout)
    out, hidden = doc["layers"][2], doc["layers"][1]
    o, t = out["a"], doc["target"]
    delta_out = [oj * (1 - oj) * (oj - tj) for oj, tj in zip(o, t)]  # delta_j = o_j (1 - o_j)(o_j - t_j)
    assert out["delta"] == pytest.approx(delta_out, abs=1e-12)
    W3 = out["W"]  # W x form: W3[j][i] from hidden i to output j
    a2 = hidden["a"]
    delta_hidden = [a2[i] * (1 - a2[i]) * sum(delta_out[j] * W3[j][i] for j in range(2)) for i in range(2)]
    assert hidden["delta"] == pytest.approx(delta_hidden, abs=1e-12)
    grad = np.array([[delta_out[j] * a2[i] for i in range(2)] for j in range(2)])
    np.testing.assert_allclose(out["dE_dW"], grad, atol=1e-12)
    np.testing.assert_allclose(out["W_new"], np.array(W3) - 0.5 * grad, atol=1e-12)  # W_ji <- W_ji - eta delta_j o_i
    assert doc["loss"] == pytest.approx(0.5 * sum((oj - tj) ** 2 for oj, tj in zip(o, t)))


def test_trace_prints_the_numbers() -> None:
    out = invoke("trace", "--config", TOY, "--input", "1,-1", "--target", "0,1").stdout
    assert "[0.98201379, 0.11920292]" in out and "[0.61770478, 0.82912398]" in out
    assert "o (1 - o)(o - t)" in out and "one SGD step" in out


def test_trace_graph() -> None:
    doc = json.loads(invoke("trace", "--graph", "--json").stdout)
    assert (doc["q"], doc["f"], doc["df_dz"], doc["df_dq"], doc["df_dx"], doc["df_dy"]) == (3, -12, 3, -4, -4, -4)
    out = invoke("trace", "--graph").stdout
    assert "q = x + y = 3" in out and "f = q z = -12" in out and "df/dx = df/dq * dq/dx = -4 * 1 = -4" in out


def test_trace_errors() -> None:
    result = invoke("trace", "--config", TOY, "--input", "1,2,3")
    assert result.exit_code == 1 and "the input has 3 values but the network takes 2" in result.stderr
    assert invoke("trace", "--config", TOY, "--input", "a,b").exit_code == 2
    assert invoke("trace", "--config", TOY).exit_code == 2
    result = invoke("trace", "--config", str(CONFIGS / "mnist.yaml"), "--input", "1,2")
    assert result.exit_code == 1 and "not a network file" in result.stderr


def test_network_files_are_checked(tmp_path) -> None:
    bad = tmp_path / "n.yaml"
    bad.write_text("network:\n  layers:\n    - W: [[1, 2], [3]]\n      b: [0, 0]\n")
    with pytest.raises(ConfigError, match="rectangular"):
        load_network(bad)
    bad.write_text("network:\n  layers:\n    - W: [[1, 2]]\n      b: [0, 0]\n")
    with pytest.raises(ConfigError, match="has 2 entries but W has 1 rows"):
        load_network(bad)
    bad.write_text("network:\n  layers:\n    - W: [[1, 2]]\n      b: [0]\n    - W: [[1, 2]]\n      b: [0]\n")
    with pytest.raises(ConfigError, match="takes 2 inputs but layer 0 has 1 neurons"):
        load_network(bad)
    with pytest.raises(ConfigError, match="is a network file"):
        load_config(CONFIGS / "toy.yaml")  # a network file is not an experiment


def test_inspect_counts_as_the_lecture_counts(tmp_path) -> None:
    net = tmp_path / "342.yaml"
    net.write_text(
        "network:\n  layers:\n"
        "    - W: [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]\n      b: [0, 0, 0, 0]\n"
        "    - W: [[0, 0, 0, 0], [0, 0, 0, 0]]\n      b: [0, 0]\n"
    )
    arch = json.loads(invoke("inspect", str(net), "--json").stdout)["architecture"]
    assert (arch["weights"], arch["biases"], arch["parameters"], arch["neurons"]) == (20, 6, 26, 6)
    out = invoke("inspect", str(net)).stdout
    assert "3-4-2" in out and "26" in out and "6 neurons" in out


def test_inspect_config_and_checkpoint(tmp_path, monkeypatch) -> None:
    arch = json.loads(invoke("inspect", str(CONFIGS / "mnist.yaml"), "--json").stdout)["architecture"]
    assert arch["parameters"] == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    monkeypatch.chdir(tmp_path)
    assert invoke("train", "-c", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--json").exit_code == 0
    (ckpt,) = (tmp_path / "runs" / "quickstart").glob("*/checkpoint.npz")
    doc = json.loads(invoke("inspect", str(ckpt), "--json").stdout)
    assert doc["kind"] == "checkpoint" and doc["meta"]["dataset"] == "mnist-sample"
    assert [w["name"] for w in doc["weights"]] == ["W1", "b1", "W2", "b2"]
    assert 0 <= doc["weights"][0]["near_zero"] <= 1
    out = invoke("inspect", str(ckpt)).stdout
    assert "weights" in out and "normalization" in out and "val_accuracy" in out
    result = invoke("inspect", "missing.npz")
    assert result.exit_code == 1 and "no such checkpoint" in result.stderr


def test_gradcheck_every_pairing_passes() -> None:
    result = invoke("gradcheck", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # every hidden activation of the registry x every valid (output, loss) pairing, softmax + mse included
    pairings = sum(len(outputs) for outputs in COMPATIBLE_OUTPUTS.values())
    assert doc["passed"] and doc["max_error"] < 1e-5 and len(doc["checks"]) == len(ACTIVATIONS) * pairings
    assert {c["activation"] for c in doc["checks"]} == set(ACTIVATIONS)
    assert {(c["output"], c["loss"]) for c in doc["checks"]} == {
        ("softmax", "cross_entropy"),
        ("softmax", "mse"),
        ("sigmoid", "mse"),
        ("linear", "mse"),
        ("sigmoid", "bce"),
    }
    assert "passed" in invoke("gradcheck").stdout


@pytest.mark.parametrize("config", ["mnist", "mnist-classic", "fashion-mnist"])
def test_gradcheck_a_config(config: str) -> None:
    result = invoke("gradcheck", "--config", str(CONFIGS / f"{config}.yaml"), "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["checks"][0]["errors"]) >= {"W1", "b1", "W2", "b2"}


def test_gradcheck_fails_loudly_on_a_broken_backprop(monkeypatch) -> None:
    from mlpcli.nn import mlp

    original = mlp.MLP.backward

    def broken(self, delta):  # type: ignore[no-untyped-def]
        grads = original(self, delta)
        grads["b1"] *= 2
        return grads

    monkeypatch.setattr(mlp.MLP, "backward", broken)
    result = invoke("gradcheck")
    assert result.exit_code == 1 and "gradient check failed" in result.stderr


def test_diagnostics_and_lecture_warnings(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "-c", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--diagnostics")
    assert result.exit_code == 0 and "dead_1=" in result.stdout and "grad_norm_1=" in result.stdout
    (metrics,) = (tmp_path / "runs" / "quickstart").glob("*/metrics.csv")
    header = metrics.read_text().splitlines()[0]
    assert "dead_1" in header and "grad_norm_2" in header
    result = invoke(
        "train",
        "-c",
        str(CONFIGS / "quickstart.yaml"),
        "--epochs",
        "1",
        "--diagnostics",
        "--set",
        "model.activation=sigmoid",
        "--set",
        "model.hidden=[16,16,16]",
        "--out",
        "s",
    )
    assert "saturated_3=" in result.stdout and "vanishing gradients" in result.stderr
    result = invoke(
        "train",
        "-c",
        str(CONFIGS / "quickstart.yaml"),
        "--epochs",
        "1",
        "--set",
        "model.activation=linear",
        "--out",
        "lin",
    )
    assert "collapses to one linear map" in result.stderr
