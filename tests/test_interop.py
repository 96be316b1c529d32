"""Interop: ONNX export against onnxruntime, Kaggle CSV files, shell completion, pictures of the weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FULL_MNIST
from helpers import invoke, write_csv

from mlpcli.config import load_config
from mlpcli.data.csvfile import read_csv_digits
from mlpcli.data.load import load_dataset
from mlpcli.errors import DataError
from mlpcli.files import checkpoint
from mlpcli.inference.predictor import Predictor
from mlpcli.nn import ACTIVATIONS, MLP
from mlpcli.training import service as training

CONFIGS = Path(__file__).parent.parent / "configs"


def _checkpoint(path: Path, activation: str, output: str, per_pixel: bool = False, seed: int = 0) -> Path:
    """A randomly initialized checkpoint (equivalence does not need training)."""
    rng = np.random.default_rng(seed)
    model = MLP([784, 24, 16, 10], activation, output, leaky_slope=0.2).init(rng, "xavier")
    for name, p in model.params.items():
        if name.startswith("b"):
            p[:] = rng.normal(0, 0.3, p.shape)
    mean = rng.uniform(0, 0.3, 784).astype(np.float32) if per_pixel else np.array(0.1307, np.float32)
    std = rng.uniform(0.2, 0.5, 784).astype(np.float32) if per_pixel else np.array(0.3081, np.float32)
    loss = "cross_entropy" if output == "softmax" else "mse"
    meta = checkpoint.build_meta(
        model.layer_sizes,
        activation,
        output,
        [str(i) for i in range(10)],
        "mnist",
        config={"model": {"leaky_slope": 0.2}, "loss": loss},
    )
    checkpoint.save(path, checkpoint.Checkpoint({k: v.copy() for k, v in model.params.items()}, mean, std, meta))
    return path


def _onnx_probabilities(model_path: Path, pixels: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"pixels": pixels.astype(np.float32)})[0]


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "linear"])
def test_onnx_matches_the_forward_pass(tmp_path, activation: str, output: str) -> None:
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install '.[onnx]'")
    ckpt_path = _checkpoint(tmp_path / "m.npz", activation, output, per_pixel=output == "sigmoid")
    result = invoke("export", str(ckpt_path), "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 0, result.output
    model = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)] and meta["dataset"] == "mnist"
    assert meta["mlpcli_version"]
    data = load_dataset("mnist-sample")
    ckpt = checkpoint.load(ckpt_path)
    ours = Predictor(ckpt).probabilities_raw(data.test_x)
    theirs = _onnx_probabilities(tmp_path / "m.onnx", data.test_x)
    np.testing.assert_allclose(theirs, ours, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(theirs.argmax(axis=1), ours.argmax(axis=1))


def test_onnx_batch_size_is_dynamic_and_a_trained_model_agrees(tmp_path) -> None:
    pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install '.[onnx]'")
    result = training.run(
        training.prepare(load_config(CONFIGS / "quickstart.yaml", ["train.epochs=2"])), tmp_path / "r"
    )
    assert invoke("export", str(result.checkpoint), "-o", str(tmp_path / "q.onnx"), "--json").exit_code == 0
    # the full test set when .ci/run provides MNIST, the shipped sample's otherwise
    data = load_dataset("mnist", data_dir=Path(FULL_MNIST)) if FULL_MNIST else load_dataset("mnist-sample")
    ckpt = checkpoint.load(result.checkpoint)
    ours = Predictor(ckpt).probabilities_raw(data.test_x)
    for rows in (slice(0, 1), slice(0, 7), slice(None)):  # n is dynamic
        theirs = _onnx_probabilities(tmp_path / "q.onnx", data.test_x[rows])
        np.testing.assert_allclose(theirs, ours[rows], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(theirs.argmax(axis=1), ours[rows].argmax(axis=1))


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_safetensors_holds_a_pytorch_sequential_that_computes_the_same(tmp_path, activation) -> None:
    """Read back with safetensors itself, the tensors and metadata rebuild mlpcli's forward pass."""
    safetensors = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    from mlpcli.nn.activations import get_activation, softmax

    ckpt_path = _checkpoint(tmp_path / "m.npz", activation, "softmax", per_pixel=True)
    result = invoke("export", str(ckpt_path), "-o", str(tmp_path / "m.safetensors"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "safetensors"
    tensors = safetensors.load_file(str(tmp_path / "m.safetensors"))
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as fh:
        meta = fh.metadata()
    assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
    assert tensors["0.weight"].shape == (24, 784) and json.loads(meta["layer_sizes"]) == [784, 24, 16, 10]
    pixels = load_dataset("mnist-sample").test_x[:50].astype(np.float32)
    a = (pixels / 255 - np.array(json.loads(meta["norm_mean"]))) / np.array(json.loads(meta["norm_std"]))
    act = get_activation(meta["activation"], **json.loads(meta["activation_params"]))
    for index in (0, 2, 4):
        a = a @ tensors[f"{index}.weight"].T + tensors[f"{index}.bias"]
        a = act.fn(a) if index < 4 else softmax(a)
    ckpt = checkpoint.load(ckpt_path)
    ours = Predictor(ckpt).probabilities_raw(pixels)
    np.testing.assert_allclose(a, ours, atol=1e-5)


def test_export_format_comes_from_the_suffix_or_is_asked_for(tmp_path) -> None:
    ckpt_path = _checkpoint(tmp_path / "m.npz", "relu", "softmax")
    result = invoke("export", str(ckpt_path), "-o", str(tmp_path / "m.bin"))
    assert result.exit_code == 1 and "--format" in result.stderr and ".safetensors" in result.stderr
    result = invoke("export", str(ckpt_path), "-o", str(tmp_path / "m.bin"), "--format", "pickle")
    assert result.exit_code == 1 and "onnx, safetensors" in result.stderr


def test_export_without_onnx_is_one_line(tmp_path, monkeypatch) -> None:
    ckpt_path = _checkpoint(tmp_path / "m.npz", "relu", "softmax")
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = invoke("export", str(ckpt_path), "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 1 and "[onnx]'" in result.stderr and "pip install" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


# ---- Kaggle CSV ---------------------------------------------------------------------------


def test_csv_round_trip_train_predict_and_submission(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sample = load_dataset("mnist-sample")
    write_csv(tmp_path / "train.csv", sample.train_x[:1500], sample.train_y[:1500])
    write_csv(tmp_path / "labelled-test.csv", sample.test_x[:300], sample.test_y[:300])
    write_csv(tmp_path / "test.csv", sample.test_x[:300], None)
    x, y = read_csv_digits(tmp_path / "train.csv")
    np.testing.assert_array_equal(x, sample.train_x[:1500])
    np.testing.assert_array_equal(y, sample.train_y[:1500])
    sets = ["data.dataset=train.csv", "data.validation=150", "data.test=labelled-test.csv"]
    args = [a for s in sets for a in ("--set", s)]
    result = invoke("train", "-c", str(CONFIGS / "quickstart.yaml"), *args, "--out", "r", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test_accuracy"] > 0.7
    result = invoke("predict", "test.csv", "-c", "r/checkpoint.npz", "--submission", "submission.csv")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "submission.csv").read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 301
    ckpt = checkpoint.load(tmp_path / "r" / "checkpoint.npz")
    expected = Predictor(ckpt).probabilities_raw(sample.test_x[:300]).argmax(axis=1)
    for i, line in enumerate(lines[1:]):
        assert line == f"{i + 1},{expected[i]}"  # ImageId from 1, in order, the network's answer for that row
    doc = json.loads(invoke("predict", "test.csv", "-c", "r/checkpoint.npz", "--json").stdout)
    assert [d["row"] for d in doc[:3]] == [1, 2, 3] and [d["prediction"] for d in doc] == expected.tolist()


def test_a_csv_without_a_test_split_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sample = load_dataset("mnist-sample")
    write_csv(tmp_path / "train.csv", sample.train_x[:400], sample.train_y[:400])
    result = invoke(
        "train",
        "-c",
        str(CONFIGS / "quickstart.yaml"),
        "--set",
        "data.dataset=train.csv",
        "--set",
        "data.validation=40",
        "--epochs",
        "1",
        "--out",
        "r",
    )
    assert result.exit_code == 0, result.output
    assert "no test split" in result.stderr and "no test report" in result.stdout
    assert json.loads((tmp_path / "r" / "status.json").read_text())["test_accuracy"] is None


HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))
ROW = "3," + ",".join(["0"] * 784)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        (HEADER + "\n", "no rows after the header"),
        (HEADER + "\n" + ROW + "\n" + ROW[:-2] + "\n", "line 3 (data row 2) has 784 columns, expected 785"),
        (
            HEADER + "\n" + ROW + "\n" + ROW.replace(",0", ",x", 1) + "\n",
            "line 3 (data row 2), column 2 (pixel0): 'x' is not a whole number",
        ),
        (
            HEADER + "\n" + ROW[:-1] + "256\n",
            "line 2 (data row 1), column 785 (pixel783): pixel value 256 is outside 0-255",
        ),
        (HEADER + "\n" + ROW[:-1] + "-1\n", "pixel value -1 is outside 0-255"),
        (HEADER + "\n" + "12" + ROW[1:] + "\n", "line 2 (data row 1), column 1 (label): label 12 is not a class (0-9)"),
        (HEADER + "\n" + ROW.replace(",0", ",0.5", 1) + "\n", "'0.5' is not a whole number"),
        (HEADER.replace("pixel5", "pixelfive") + "\n" + ROW + "\n", "line 1 (the header), column 7 is 'pixelfive'"),
        ("a,b\n1,2\n", "the header has 2 columns"),
        # Excel's "CSV UTF-8": a byte-order mark; a bad row after a blank line is named by its line in the file
        ("\ufeff" + HEADER + "\r\n\r\n" + ROW + "\r\n" + ROW[:-2] + "\r\n", "line 4 (data row 2) has 784 columns"),
        (HEADER + "\n" + ROW.replace(",0", ',"5"', 1) + "\n", "'\"5\"' is not a whole number (quoted"),
        (HEADER + "\n" + ROW.replace(",0", ",\u0663", 1) + "\n", "column 2 (pixel0): '\u0663' is not a whole number"),
        ("label" + HEADER[5:].replace("pixel0", "pxl0") + "\n" + ROW + "\n", "column 2 is 'pxl0', expected 'pixel0'"),
    ],
)
def test_bad_csv_is_one_line_naming_row_and_column_and_nothing_is_written(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        read_csv_digits(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    ckpt_path = _checkpoint(tmp_path / "m.npz", "relu", "softmax")
    result = invoke("predict", str(path), "-c", str(ckpt_path), "--submission", str(tmp_path / "sub.csv"))
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sub.csv").exists()


def test_a_bad_row_far_into_a_large_file_is_found(tmp_path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (9000, 784))
    path = write_csv(tmp_path / "big.csv", x, np.zeros(9000, int))
    lines = path.read_text().splitlines()
    lines[8500] = lines[8500].rsplit(",", 1)[0] + ",300"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"data row 8500\), column 785"):
        read_csv_digits(path)


# ---- completion and weights -----------------------------------------------------------------


def _complete(words: str, tmp_path: Path) -> list[str]:
    env = {
        **os.environ,
        "_MLPCLI_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    result = subprocess.run([sys.executable, "-m", "mlpcli"], env=env, cwd=tmp_path, capture_output=True, text=True)
    return result.stdout.split()


def test_shell_completion_script_and_completions(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlpcli", "--show-completion", "bash"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "_MLPCLI_COMPLETE" in result.stdout and "complete" in result.stdout
    (tmp_path / "a.yaml").write_text("name: x\n")
    (tmp_path / "b.txt").write_text("")
    (tmp_path / "runs").mkdir()
    (tmp_path / "m.npz").write_bytes(b"")
    assert _complete("mlpcli data fetch fa", tmp_path) == ["fashion-mnist"]
    assert _complete("mlpcli eval m.npz --dataset mnist", tmp_path) == ["mnist", "mnist-sample"]
    assert _complete("mlpcli train -c ", tmp_path) == ["a.yaml", "runs/"]
    assert _complete("mlpcli eval ", tmp_path) == ["m.npz", "runs/"]


def test_inspect_weights_draws_templates_and_writes_a_png(tmp_path) -> None:
    ckpt_path = _checkpoint(tmp_path / "m.npz", "relu", "softmax")
    result = invoke("inspect", str(ckpt_path), "--weights", "-n", "4", "--png", str(tmp_path / "w.png"))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("unit ") == 4 and "strongest first" in result.stdout
    assert (tmp_path / "w.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(invoke("inspect", str(ckpt_path), "--weights", "-n", "24", "--json").stdout)
    scores = [u["score"] for u in doc["units"]]
    assert len(scores) == 24 and scores == sorted(scores, reverse=True)
    assert np.array(doc["units"][0]["template"]).shape == (28, 28)
    toy = invoke("inspect", str(CONFIGS / "toy.yaml"), "--weights")
    assert toy.exit_code == 0 and "W1 (neurons x inputs)" in toy.stdout and "neuron 2" in toy.stdout
    result = invoke("inspect", str(CONFIGS / "mnist.yaml"), "--weights")
    assert result.exit_code == 1 and "has no weights" in result.stderr


def test_an_activation_per_layer_trains_saves_and_exports(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "--set",
        "model.hidden=[16, 8]",
        "--set",
        "model.activation=[relu, tanh]",
        "--epochs",
        "2",
        "--out",
        "mixed",
    ]
    result = invoke("train", "-c", "quickstart", *args)
    assert result.exit_code == 0, result.output
    ckpt = checkpoint.load(tmp_path / "mixed" / "checkpoint.npz")
    assert ckpt.meta["activation"] == ["relu", "tanh"] and Predictor(ckpt).model.activations == ["relu", "tanh"]
    bad = invoke("train", "-c", "quickstart", "--set", "model.activation=[relu]", "--set", "model.hidden=[16, 8]")
    assert bad.exit_code == 1 and "one per layer" in bad.stderr
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert invoke("export", "mixed", "-o", "mixed.onnx").exit_code == 0
    pixels = load_dataset("mnist-sample").test_x[:20]
    np.testing.assert_allclose(
        _onnx_probabilities(tmp_path / "mixed.onnx", pixels), Predictor(ckpt).probabilities_raw(pixels), atol=1e-5
    )
