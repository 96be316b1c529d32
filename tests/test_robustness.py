"""Bad input and faults: one clear error every time, and nothing of the user's damaged.

Covers what the unit tests of each module do not: killed processes (checkpoint writes and
downloads), full disks and unwritable folders, fuzzed config and checkpoint files, odd
pictures, and data that does not fit the model.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import TINY, TINY_SPEC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from mlpcli.cli.main import app
from mlpcli.config import config_from_dict, load_config
from mlpcli.data import download
from mlpcli.data.cache import matches
from mlpcli.data.idx import write_idx
from mlpcli.errors import CheckpointError, ConfigError, DataError, ImageError, MlpcliError
from mlpcli.files import checkpoint
from mlpcli.inference.pictures import prepare_image
from mlpcli.inference.predictor import Predictor
from mlpcli.training import service as training

runner = CliRunner()
REPO = Path(__file__).parent.parent
CONFIGS = REPO / "configs"
SMALL = ["name=r", "data.dataset=mnist-sample", "data.validation=200", "model.hidden=[16]", "train.epochs=2"]


def _wait_for(predicate, proc: subprocess.Popen, guard: float = 120.0) -> None:
    """Poll until predicate() or the process ends; the guard only stops a hang, it times nothing."""
    end = time.monotonic() + guard
    while not predicate() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.01)


# ---- killed processes ---------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from mlpcli.files import checkpoint
    path = sys.argv[1]
    base = checkpoint.load(path)
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        base.params["W1"][...] = i  # each write holds a different, recognisable value
        base.meta["epoch"] = i
        checkpoint.save(path, base)
    """
)


def test_sigkill_while_writing_checkpoints_never_leaves_a_broken_one(tmp_path) -> None:
    run = training.run(training.prepare(load_config(None, SMALL)), tmp_path / "run")
    path = run.checkpoint
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(0)
    seen_epochs = set()
    for _ in range(24):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ckpt = checkpoint.load(path)  # intact every time: the old file or a complete new one
        epoch = ckpt.meta["epoch"]
        seen_epochs.add(epoch)
        if isinstance(epoch, int) and epoch > 0 and ckpt.meta.get("mlpcli_version"):
            assert np.all(ckpt.params["W1"] == ckpt.params["W1"].flat[0])
    assert len(seen_epochs) > 1  # the writer really was killed at different moments
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    # a SIGKILL can leave a temporary file behind (never under the real name); the next run removes it
    training.run(training.prepare(load_config(None, [*SMALL, "train.epochs=1"])), path.parent)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")], leftovers


FETCHER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from conftest import TINY_SPEC
    from mlpcli.data import download
    download.fetch(TINY_SPEC)
    """
)


def test_sigkill_during_a_download_then_fetch_again(serve, monkeypatch, isolated_env, tmp_path) -> None:
    server = serve()
    server.behaviours["slow"] = "slow"
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("slow"))
    script = tmp_path / "fetch.py"
    script.write_text(FETCHER)
    folder = isolated_env / TINY_SPEC.name
    proc = subprocess.Popen([sys.executable, str(script), str(Path(__file__).parent)], env=os.environ.copy())

    def writing() -> bool:
        return any(p.stat().st_size > 0 for p in folder.glob("train-images-idx3-ubyte.gz.*.part"))

    _wait_for(lambda: folder.is_dir() and writing(), proc)
    assert proc.poll() is None, "the download ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert all(s.state != "verified" or s.path is None or matches(s.path, s.dfile) for s in download.status(TINY_SPEC))
    assert not (folder / "train-images-idx3-ubyte.gz").exists()  # the partial file is not under the real name
    server.behaviours["slow"] = "ok"
    paths = download.fetch(TINY_SPEC)
    assert all(matches(paths[f.role], f) for f in TINY_SPEC.files)
    assert sorted(p.name for p in folder.iterdir() if p.name != ".lock") == sorted(f.name for f in TINY_SPEC.files)


# ---- full disks and unwritable folders ----------------------------------------------------


def test_disk_full_while_saving_a_checkpoint_is_one_clear_error(tmp_path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    training.run(training.prepare(load_config(None, SMALL)), run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    real_save = np.savez

    def full_disk(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        real_save(file, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    last = checkpoint.load(run_dir / "last.npz")
    with pytest.raises(MlpcliError, match="No space left on device; earlier checkpoints are intact"):
        training.run(training.prepare(load_config(None, [*SMALL, "train.epochs=3"])), run_dir, resume=last)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert after["checkpoint.npz"] == before["checkpoint.npz"] and after["last.npz"] == before["last.npz"]
    assert not [n for n in after if n.endswith(".tmp")]


def test_disk_full_during_a_download(serve, monkeypatch, isolated_env) -> None:
    server = serve()
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("good"))
    real_open = download.open_nofollow

    def full(path, flags):  # type: ignore[no-untyped-def]
        if Path(path).name.endswith(".part"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags)

    monkeypatch.setattr(download, "open_nofollow", full)
    with pytest.raises(DataError, match="No space left on device"):
        download.fetch(TINY_SPEC)
    monkeypatch.undo()
    assert not [p for p in (isolated_env / TINY_SPEC.name).iterdir() if p.name != ".lock"]  # no part left behind


def test_an_unwritable_output_folder_is_named(tmp_path, monkeypatch) -> None:
    def denied(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", denied)
    with pytest.raises(MlpcliError, match=f"cannot write to the output folder {tmp_path / 'ro'}: Permission denied"):
        training.ensure_writable(tmp_path / "ro")


def test_a_read_only_cache_is_named(serve, monkeypatch, isolated_env) -> None:
    server = serve()
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("good"))

    def denied(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(download.tempfile, "mkstemp", denied)
    with pytest.raises(DataError, match=f"cannot write to the data cache {isolated_env / 'tiny'}: Permission denied"):
        download.fetch(TINY_SPEC)


def test_a_cache_path_that_is_a_file(monkeypatch, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("MLPCLI_DATA_DIR", str(blocker))
    monkeypatch.setenv("MLPCLI_MIRROR", "http://127.0.0.1:9/")
    with pytest.raises(DataError, match="cannot write to the data cache"):
        download.fetch(TINY_SPEC)


# ---- fuzzed configs and checkpoints ---------------------------------------------------------

KEYS = [
    "name",
    "seed",
    "data",
    "model",
    "loss",
    "optimizer",
    "schedule",
    "train",
    "hidden",
    "lr",
    "dropout",
    "dataset",
    "validation",
    "epochs",
    "batch_size",
    "activation",
    "early_stopping",
    "patience",
    "x",
]
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
def test_fuzzed_configs_raise_only_config_errors(raw: dict) -> None:
    try:
        cfg = config_from_dict(raw, "fuzz.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.yaml")
        return
    assert cfg.optimizer.lr > 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_fuzzed_yaml_text_raises_only_config_errors(tmp_path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError:
        pass


@pytest.fixture(scope="module")
def good_checkpoint_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ck") / "c.npz"
    model = {
        "W1": np.ones((784, 4), np.float32),
        "b1": np.zeros(4, np.float32),
        "W2": np.ones((4, 10), np.float32),
        "b2": np.zeros(10, np.float32),
    }
    meta = checkpoint.build_meta([784, 4, 10], "relu", "softmax", list("0123456789"), "mnist")
    checkpoint.save(path, checkpoint.Checkpoint(model, np.float32(0.1), np.float32(0.3), meta))
    return path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_checkpoints_raise_only_checkpoint_errors(tmp_path, good_checkpoint_bytes, data) -> None:
    raw = bytearray(good_checkpoint_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    path = tmp_path / "fuzz.npz"
    path.write_bytes(bytes(raw[:cut]))
    try:
        ckpt = checkpoint.load(path)
    except CheckpointError:
        return
    Predictor(ckpt).model.forward(np.zeros((1, 784), np.float32))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(["W1", "b1", "W2", "norm_mean", "norm_std", "meta", "opt.t"]),
        st.sampled_from(["f32", "i8", "str", "0d", "big", "json"]),
        max_size=7,
    )
)
def test_checkpoints_with_arbitrary_arrays_raise_only_checkpoint_errors(tmp_path, spec) -> None:
    makers = {
        "f32": lambda: np.ones((784, 4), np.float32),
        "i8": lambda: np.ones(3, np.int8),
        "str": lambda: np.array(["a", "b"]),
        "0d": lambda: np.array(1.5),
        "big": lambda: np.ones((2, 2, 2)),
        "json": lambda: np.array(
            json.dumps(
                {
                    "format": "mlpcli.checkpoint",
                    "version": 1,
                    "layer_sizes": [784, 4],
                    "activation": "relu",
                    "output": "softmax",
                }
            )
        ),
    }
    path = tmp_path / "arrays.npz"
    np.savez(path, **{k: makers[v]() for k, v in spec.items()})
    try:
        checkpoint.load(path)
    except CheckpointError:
        pass


# ---- pictures and data that do not fit ----------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: Image.new("L", (1, 1), 255).save(p), "no ink"),
        (lambda p: Image.new("L", (1, 1), 0).save(p), "no ink"),
        (lambda p: Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(p), "no ink"),
        (lambda p: Image.new("L", (64, 64), 128).save(p), "no ink"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20), "not an image"),
        (lambda p: p.write_bytes(b"GIF89a"), "cannot decode|not an image"),
    ],
)
def test_odd_pictures_get_a_clear_error(tmp_path, make, message) -> None:
    path = tmp_path / "odd.png"
    make(path)
    with pytest.raises(ImageError, match=message):
        prepare_image(path)


def test_a_single_dark_pixel_on_white_is_still_a_digit(tmp_path) -> None:
    img = Image.new("L", (30, 30), 255)
    img.putpixel((10, 12), 0)
    img.save(tmp_path / "dot.png")
    assert prepare_image(tmp_path / "dot.png").max() == pytest.approx(1.0)


def test_a_folder_passed_as_a_picture(tmp_path) -> None:
    with pytest.raises(ImageError, match="is a folder"):
        prepare_image(tmp_path)


def test_eval_on_images_of_another_size_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    ckpt = training.run(training.prepare(load_config(None, SMALL)), tmp_path / "run").checkpoint
    folder = tmp_path / "small-images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("train-images-idx3-ubyte.gz", (20, 8, 8)), ("t10k-images-idx3-ubyte.gz", (10, 8, 8))):
        write_idx(folder / name, rng.integers(0, 256, size=shape, dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, size=20, dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, size=10, dtype=np.uint8))
    result = runner.invoke(app, ["eval", str(ckpt), "--dataset", str(folder)])
    assert result.exit_code == 1 and "has 64 pixels per image but the model expects 784" in result.stderr
    # training on it works: the network's input size follows the data
    doc = runner.invoke(
        app,
        [
            "train",
            "--json",
            *[f"--set={s}" for s in SMALL],
            f"--set=data.dataset={folder}",
            "--set=data.validation=0",
            "--out",
            "small",
        ],
    )
    assert doc.exit_code == 0, doc.output
    assert checkpoint.load(Path("small") / "checkpoint.npz").layer_sizes == [64, 16, 10]


def test_labels_out_of_range_through_the_cli(tmp_path) -> None:
    folder = tmp_path / "bad-labels"
    folder.mkdir()
    for f in TINY.glob("*.gz"):
        (folder / f.name).write_bytes(f.read_bytes())
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(100, 11, np.uint8))
    result = runner.invoke(
        app, ["train", *[f"--set={s}" for s in SMALL], f"--set=data.dataset={folder}", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "t10k-labels-idx1-ubyte.gz: label 11 at index 0 is out of range 0..9" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["eval", "nope.npz"], 1, "nope.npz: no such checkpoint file"),
        (["predict", "nope.png", "-c", "nope.npz"], 1, "no such checkpoint"),
        (["train", "--config", "."], 1, "is a folder, not a config file"),
        (["train", "--resume", "nope.npz"], 1, "no such checkpoint"),
        (["inspect", "nope.yaml"], 1, "no such config file"),
        (["data", "import", "mnist", "nope"], 1, "no such folder"),
        (["plot"], 2, ""),
        (["data", "nope"], 2, ""),
        (["predict", "x.png", "--top-k", "0"], 2, ""),
        (["eval", "--errors", "-1"], 2, ""),
    ],
)
def test_command_line_mistakes(tmp_path, monkeypatch, args, code, message) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_resume_with_a_checkpoint_of_another_network(tmp_path) -> None:
    first = training.run(training.prepare(load_config(None, SMALL)), tmp_path / "a")
    other = load_config(None, [*SMALL, "model.hidden=[8]"])
    with pytest.raises(CheckpointError, match=r"holds a relu network \[784, 16, 10\]"):
        training.run(training.prepare(other), tmp_path / "b", resume=checkpoint.load(first.last))


def test_yaml_safe_load_refuses_python_objects(tmp_path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch /tmp/mlpcli-yaml-pwned']\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(path)
    assert not Path("/tmp/mlpcli-yaml-pwned").exists()
    assert yaml  # safe_load only: the loader never constructs Python objects
