"""Checkpoints: the documented format, atomic writes, and exact complaints about bad files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlpcli.errors import CheckpointError
from mlpcli.files import checkpoint
from mlpcli.inference.predictor import Predictor


def _ckpt(sizes: tuple[int, ...] = (784, 16, 10)) -> checkpoint.Checkpoint:
    rng = np.random.default_rng(0)
    params = {}
    for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{l}"] = rng.normal(size=(a, b)).astype(np.float32)
        params[f"b{l}"] = rng.normal(size=b).astype(np.float32)
    meta = checkpoint.build_meta(list(sizes), "relu", "softmax", [str(i) for i in range(10)], "mnist", epoch=3)
    return checkpoint.Checkpoint(params, np.float32(0.13), np.float32(0.31), meta, {"t": np.array(5)})


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def test_round_trip_matches_the_documented_layout(tmp_path) -> None:
    path = checkpoint.save(tmp_path / "c.npz", _ckpt())
    arrays = _arrays(path)
    assert {"W1", "b1", "W2", "b2", "norm_mean", "norm_std", "meta", "opt.t"} == set(arrays)
    assert arrays["W1"].shape == (784, 16) and arrays["W1"].dtype == np.float32
    meta = json.loads(str(arrays["meta"]))
    assert meta["format"] == "mlpcli.checkpoint" and meta["version"] == 1
    assert meta["layer_sizes"] == [784, 16, 10] and "created" in meta and "mlpcli_version" in meta
    loaded = checkpoint.load(path)
    np.testing.assert_array_equal(loaded.params["W2"], _ckpt().params["W2"])
    assert int(loaded.opt_state["t"]) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary left


def test_a_checkpoint_written_by_hand_in_the_documented_format_loads(tmp_path) -> None:
    rng = np.random.default_rng(1)
    meta = {
        "format": "mlpcli.checkpoint",
        "version": 1,
        "layer_sizes": [784, 10],
        "activation": "relu",
        "output": "softmax",
        "classes": list("0123456789"),
        "dataset": "mnist",
    }
    path = _write(
        tmp_path / "hand.npz",
        {
            "W1": rng.normal(size=(784, 10)),
            "b1": np.zeros(10),
            "norm_mean": np.zeros(784),
            "norm_std": np.ones(784),
            "meta": np.array(json.dumps(meta)),
        },
    )
    model = Predictor(checkpoint.load(path)).model
    assert model.forward(np.zeros((2, 784), np.float32)).shape == (2, 10)


class _Exploit:
    def __reduce__(self) -> tuple:
        return (Path.touch, (Path("/tmp/mlpcli-pwned"),))


def _mutate(tmp_path: Path, **changes: object) -> Path:
    arrays = _arrays(checkpoint.save(tmp_path / "ok.npz", _ckpt()))
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v  # type: ignore[assignment]
    return _write(tmp_path / "bad.npz", arrays)


def _meta_with(**changes: object) -> np.ndarray:
    meta = _ckpt().meta
    meta.update(changes)
    return np.array(json.dumps(meta))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"W2": None}, "missing array W2"),
        ({"W1": np.zeros((10, 16), np.float32)}, "W1 has shape (10, 16), expected (784, 16)"),
        ({"b2": np.zeros(3, np.float32)}, "b2 has shape (3,), expected (10,)"),
        ({"W1": np.zeros((784, 16), np.int32)}, "W1 has dtype int32"),
        ({"norm_std": None}, "missing array norm_std"),
        ({"norm_mean": np.zeros(5, np.float32)}, "norm_mean must be a float scalar or a 784-vector"),
        ({"norm_std": np.float32(0)}, "norm_std must be positive"),
        ({"meta": None}, "missing the meta array"),
        ({"meta": np.array("not json")}, "meta is not valid JSON"),
        ({"meta": np.arange(3)}, "meta must be a 0-d string array"),
        ({"meta": _meta_with(format="other")}, "meta.format is 'other'"),
        ({"meta": _meta_with(version=2)}, "format version 2 by a newer mlpcli"),
        ({"meta": _meta_with(version="1")}, "meta.version must be an integer"),
        ({"meta": _meta_with(layer_sizes=[784])}, "meta.layer_sizes must be a list"),
        ({"meta": _meta_with(activation="swish")}, "meta.activation 'swish'"),
        ({"meta": _meta_with(classes=["a"])}, "meta.classes must list 10 names"),
        ({"W1": np.full((784, 16), np.nan, np.float32)}, "W1 contains NaN"),
    ],
)
def test_bad_checkpoints_say_exactly_what_is_wrong(tmp_path, changes: dict, message: str) -> None:
    path = _mutate(tmp_path, **changes)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_truncated_and_non_zip_files(tmp_path) -> None:
    data = checkpoint.save(tmp_path / "ok.npz", _ckpt()).read_bytes()
    for name, content in (("trunc.npz", data[: len(data) // 2]), ("text.npz", b"hello"), ("empty.npz", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=str(tmp_path / name)):
            checkpoint.load(tmp_path / name)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="is a folder"):
        checkpoint.load(tmp_path)


def test_pickled_object_arrays_are_refused_without_unpickling(tmp_path) -> None:
    marker = Path("/tmp/mlpcli-pwned")
    marker.unlink(missing_ok=True)
    arrays = _arrays(checkpoint.save(tmp_path / "ok.npz", _ckpt()))
    buf = io.BytesIO()
    np.save(buf, np.array([_Exploit()], dtype=object), allow_pickle=True)
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.save(b, v)
            zf.writestr(f"{k}.npy", buf.getvalue() if k == "W1" else b.getvalue())
    with pytest.raises(CheckpointError, match="pickled"):
        checkpoint.load(path)
    assert not marker.exists()


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch) -> None:
    path = checkpoint.save(tmp_path / "c.npz", _ckpt())
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        checkpoint.save(path, _ckpt((784, 32, 10)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_the_checkpoint_format_name_is_the_one_every_release_wrote() -> None:
    """Checkpoints say format "mlpcli.checkpoint" whatever module writes them (old files must keep loading)."""
    from mlpcli.files.checkpoint_meta import FORMAT

    assert FORMAT == "mlpcli.checkpoint"


def test_checkpoints_of_the_development_builds_load_too(tmp_path) -> None:
    from mlpcli.files import checkpoint

    ckpt = checkpoint.Checkpoint(
        params={"W1": np.zeros((4, 2), np.float32), "b1": np.zeros(2, np.float32)},
        norm_mean=np.array(0.1, np.float32),
        norm_std=np.array(0.3, np.float32),
        meta=checkpoint.build_meta([4, 2], "relu", "softmax", ["0", "1"], "x"),
    )
    ckpt.meta["format"] = "mlpcli.files.checkpoint"
    checkpoint.save(tmp_path / "dev.npz", ckpt)
    assert checkpoint.load(tmp_path / "dev.npz").layer_sizes == [4, 2]
