"""Runs are never lost: a folder per run, the lock, status on disk, `runs`, `compare`, hostile checkpoints."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpcli.errors import CheckpointError
from mlpcli.files import checkpoint
from mlpcli.inference.predictor import Predictor
from mlpcli.runs.folder import RunFolder, RunLocked, claim_run_dir, list_runs, new_run_dir

CONFIGS = Path(__file__).parent.parent / "configs"
QUICK = ["-c", str(CONFIGS / "quickstart.yaml"), "--set", "model.hidden=[16]", "--epochs", "2"]


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_two_runs_of_one_config_get_two_folders_and_the_first_is_untouched(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK).exit_code == 0
    (first,) = _folders(tmp_path / "runs" / "quickstart")
    before = _snapshot(first)
    result = invoke("train", *QUICK, "--set", "optimizer.lr=0.01")
    assert result.exit_code == 0, result.output
    folders = _folders(tmp_path / "runs" / "quickstart")
    assert len(folders) == 2 and first in folders
    assert _snapshot(first) == before  # byte for byte


def test_runs_started_in_the_same_second_get_suffixes(tmp_path) -> None:
    from datetime import datetime

    when = datetime(2026, 1, 2, 3, 4, 5)
    names = [new_run_dir(tmp_path, "x", when).name for _ in range(3)]
    assert names == ["20260102-030405", "20260102-030405-2", "20260102-030405-3"]


def test_out_onto_a_used_folder_is_refused_unless_overwrite(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK, "--out", "mine").exit_code == 0
    before = _snapshot(tmp_path / "mine")
    result = invoke("train", *QUICK, "--out", "mine")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "mine already holds files" in result.stderr
    assert "--resume mine/last.npz" in result.stderr and "--overwrite" in result.stderr
    assert _snapshot(tmp_path / "mine") == before
    result = invoke("train", *QUICK, "--out", "mine", "--overwrite", "--seed", "5", "--json")
    assert result.exit_code == 0
    assert "seed: 5" in (tmp_path / "mine" / "config.yaml").read_text()
    (tmp_path / "empty").mkdir()
    assert invoke("train", *QUICK, "--out", "empty").exit_code == 0


def test_resume_of_a_finished_run_trains_longer_in_a_new_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK).exit_code == 0
    (folder,) = _folders(tmp_path / "runs" / "quickstart")
    before = _snapshot(folder)
    result = invoke("train", "--resume", str(folder / "last.npz"), "--epochs", "3", "--json")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / json.loads(result.stdout)["run_dir"]
    assert run_dir != folder and run_dir.parent == folder.parent
    assert _snapshot(folder) == before  # the finished run's record is untouched
    status = RunFolder(run_dir).read_status()
    assert status.status == "finished" and status.epochs_done == 3 and status.resumes[-1]["after_epoch"] == 2


def test_a_held_lock_refuses_a_second_writer_at_once(tmp_path) -> None:
    with RunFolder(tmp_path).lock():
        with pytest.raises(RunLocked, match=rf"being written by another process \(pid {os.getpid()}\)"):
            claim_run_dir("x", out=tmp_path)
    claim_run_dir("x", out=tmp_path)[1].release()  # released: free again


def _train_process(tmp_path: Path, out: str, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "mlpcli", "train", *QUICK, "--out", out, "--epochs", "40", *extra]
    return subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_writers_exactly_one_proceeds(tmp_path) -> None:
    a = _train_process(tmp_path, "same", "--set", "optimizer.lr=0.02")
    b = _train_process(tmp_path, "same", "--set", "optimizer.lr=0.03")
    results = [(p.wait(), p.communicate()) for p in (a, b)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser_err = next(err for code, (_, err) in results if code == 1)
    assert len(loser_err.strip().splitlines()) == 1
    assert "being written by another process" in loser_err or "already holds files" in loser_err
    # the folder is one run's, consistently: its config, its checkpoint, its status
    saved_lr = checkpoint.load(tmp_path / "same" / "checkpoint.npz").meta["config"]["optimizer"]["lr"]
    assert f"lr: {saved_lr}" in (tmp_path / "same" / "config.yaml").read_text()
    assert RunFolder(tmp_path / "same").read_status().status == "finished"


def test_a_killed_run_shows_as_such_and_does_not_block_the_next(tmp_path) -> None:
    proc = _train_process(tmp_path, "victim", "--epochs", "400")
    status_file = tmp_path / "victim" / "last.npz"
    for _ in range(600):  # wait until it has saved an epoch (no time limit on the work itself)
        if status_file.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    status = RunFolder(tmp_path / "victim").read_status()
    assert status.status == "killed"
    result = subprocess.run(
        [sys.executable, "-m", "mlpcli", "runs", ".", "--json"], cwd=tmp_path, capture_output=True, text=True
    )
    (row,) = json.loads(result.stdout)
    assert row["status"] == "killed" and row["epochs_done"] < 400
    # the kernel dropped the dead writer's lock: resuming (which locks the folder again) works at once
    again = ["train", "--resume", "victim/last.npz", "--epochs", str(row["epochs_done"] + 2), "--json"]
    result = subprocess.run([sys.executable, "-m", "mlpcli", *again], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert RunFolder(tmp_path / "victim").read_status().status == "finished"


def test_runs_lists_newest_first_in_text_and_json(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK, "--out", "runs/a/1").exit_code == 0
    time.sleep(1.1)  # started times are to the second
    assert invoke("train", *QUICK, "--out", "runs/b/1", "--set", "name=b").exit_code == 0
    result = invoke("runs", "--json")
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["b", "quickstart"]
    expected = {
        "name",
        "folder",
        "started",
        "status",
        "epochs_done",
        "epochs_planned",
        "best_val_accuracy",
        "test_accuracy",
        "train_seconds",
    }
    assert expected <= set(rows[0])
    assert rows[0]["status"] == "finished" and rows[0]["epochs_done"] == 2 and 0.3 < rows[0]["test_accuracy"] <= 1
    text = invoke("runs").stdout
    assert "finished" in text and "runs/b/1" in text and text.index("runs/b/1") < text.index("runs/a/1")
    missing = invoke("runs", str(tmp_path / "nothing"))  # a folder that does not exist is a mistake, said so
    assert missing.exit_code == 1 and "nothing: no such folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    assert "no runs under" in invoke("runs", str(tmp_path / "empty")).stdout


def test_a_damaged_status_file_does_not_break_runs(tmp_path) -> None:
    for name, text in (("a", '{"started": 5, "status": ["x"], "epochs_done": "many"}'), ("b", "[1, 2]"), ("c", "{")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "status.json").write_text(text)
    rows = [s.row(run.path) for run, s in list_runs(tmp_path)]
    assert [r["folder"] for r in rows] == [str(tmp_path / "a")] and rows[0]["epochs_done"] is None
    assert invoke("runs", str(tmp_path)).exit_code == 0


def test_compare_shows_differences_metrics_and_curves(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    invoke("train", *QUICK, "--out", "r1")
    invoke("train", *QUICK, "--out", "r2", "--set", "optimizer.lr=0.2", "--epochs", "3")
    doc = json.loads(invoke("compare", "r1", "r2", "--json").stdout)
    assert doc["differences"]["optimizer.lr"] == [0.05, 0.2]
    assert doc["differences"]["train.epochs"] == [2, 3]
    assert "model.hidden" not in doc["differences"]
    assert [r["epochs"] for r in doc["runs"]] == [2, 3]
    assert all(r["best"]["val_accuracy"] >= r["final"]["val_accuracy"] for r in doc["runs"])
    result = invoke("compare", "r1", "r2/checkpoint.npz", "--png", "cmp.png")
    assert result.exit_code == 0 and "optimizer.lr" in result.stdout and "learning curves" in result.stdout
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = invoke("compare", "r1", str(tmp_path))
    assert result.exit_code == 1 and "not a run folder" in result.stderr


def test_eval_without_a_checkpoint_uses_the_newest_finished_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK, "--out", "runs/q/finished").exit_code == 0
    newer = tmp_path / "runs" / "q" / "newer-but-killed"
    newer.mkdir()
    (newer / "checkpoint.npz").write_bytes((tmp_path / "runs/q/finished/checkpoint.npz").read_bytes())
    status = json.loads((tmp_path / "runs/q/finished/status.json").read_text())
    (newer / "status.json").write_text(json.dumps({**status, "status": "running", "started": "2099-01-01T00:00:00"}))
    assert list_runs(tmp_path / "runs")[0][1].status == "killed"  # running, but nobody holds its lock
    result = invoke("eval", "--json")
    assert result.exit_code == 0
    assert "using runs/q/finished/checkpoint.npz (quickstart, test accuracy " in result.stderr


# ---- hostile checkpoints -------------------------------------------------------------------


def _npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _array_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _header_only(shape: tuple, descr: str = "<f4", extra: bytes = b"\0" * 64) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + extra


def _meta(**overrides) -> dict:
    meta = {
        "format": "mlpcli.checkpoint",
        "version": 1,
        "layer_sizes": [4, 3, 2],
        "activation": "relu",
        "output": "softmax",
        "classes": ["a", "b"],
        "dataset": "x",
    }
    meta.update(overrides)
    return meta


def _members(meta: dict | str) -> dict[str, bytes]:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    return {
        "W1.npy": _array_bytes(np.zeros((4, 3), np.float32)),
        "b1.npy": _array_bytes(np.zeros(3, np.float32)),
        "W2.npy": _array_bytes(np.zeros((3, 2), np.float32)),
        "b2.npy": _array_bytes(np.zeros(2, np.float32)),
        "norm_mean.npy": _array_bytes(np.array(0.1, np.float32)),
        "norm_std.npy": _array_bytes(np.array(0.3, np.float32)),
        "meta.npy": _array_bytes(np.array(text)),
    }


def _load_measured(path: Path) -> tuple[str, int]:
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            checkpoint.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return str(info.value), peak


def test_a_sound_hand_made_checkpoint_loads(tmp_path) -> None:
    path = tmp_path / "ok.npz"
    path.write_bytes(_npz(_members(_meta())))
    assert checkpoint.load(path).layer_sizes == [4, 3, 2]


@pytest.mark.parametrize(
    ("member", "data", "message"),
    [
        ("W1.npy", _header_only((784, 10**7)), "W1 has shape (784, 10000000), expected (4, 3)"),
        ("W1.npy", _header_only((4, 3), "<f4", b""), "W1: truncated"),
        ("W1.npy", _header_only((4, 3), "<i8"), "W1 has dtype int64"),
        ("W1.npy", _header_only((4, 3), "|O"), "pickle"),
        ("W1.npy", _header_only((4, 3), "<c16"), "dtype complex128"),
        ("norm_std.npy", _header_only((10**9,)), "norm_std must be a float scalar or a 4-vector"),
        ("opt.v.npy", _header_only((10**9,)), "does not fit a network of 23 parameters"),
        ("meta.npy", _header_only((), "<U100000000"), "meta is 400,000,000 bytes"),
        ("meta.npy", _header_only((5,), "<U10"), "0-d string array"),
        ("W1.npy", b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 70000, "not a valid array header"),
        ("W1.npy", b"not an array at all", "not a valid array header"),
        ("extra.npy", _array_bytes(np.zeros(2)), "unexpected member 'extra'"),
    ],
)
def test_lying_members_fail_in_one_line_without_allocating(tmp_path, member, data, message) -> None:
    members = _members(_meta())
    members[member] = data
    path = tmp_path / "bad.npz"
    path.write_bytes(_npz(members))
    text, peak = _load_measured(path)
    assert message in text and "\n" not in text
    assert peak < 20 * 2**20, peak


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (_meta(layer_sizes=[784, 10**6, 10**4]), "parameters; the limit is"),
        (_meta(layer_sizes=list(range(1, 400))), "list of 2 to 256"),
        (_meta(layer_sizes=[4, 3, 3], classes=[1, 2, 3]), "W2 has shape (3, 2), expected (3, 3)"),
        (_meta(config=[1, 2]), "meta.config must be a mapping"),
        (_meta(config={"model": "relu"}), "meta.config.model must be a mapping"),
        (_meta(config={"model": {"leaky_slope": "steep"}}), "leaky_slope must be a number"),
        (_meta(config={"loss": {"x": 1}}), "meta.config.loss"),
        (_meta(history={"a": 1}), "meta.history must be a list"),
        (_meta(epoch=1.5), "meta.epoch must be an integer"),
        (_meta(classes=[[1], [2]]), "meta.classes must list 2 names"),
        (_meta(activation=["relu", "relu"]), "meta.activation"),  # one per hidden layer: here, one
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        (json.dumps(_meta(config={"a": json.loads("[" * 40 + "]" * 40)})), "nested more than 32 levels"),
        ("{" + '"a":' * 5 + "1}", "not valid JSON"),
        ("123", "meta.format is 'int'"),
    ],
)
def test_hostile_meta_fails_in_one_line(tmp_path, meta, message) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(_npz(_members(meta)))
    text, peak = _load_measured(path)
    assert message in text and "\n" not in text
    assert peak < 20 * 2**20, peak


def test_hostile_checkpoints_through_the_cli_exit_1(tmp_path) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(_npz(_members(_meta(config={"model": 7}))))
    for args in (("eval", str(path)), ("inspect", str(path)), ("predict", str(path), "-c", str(path))):
        result = invoke(*args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "meta.config.model must be a mapping" in result.stderr


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


KEYS = [
    "layer_sizes",
    "activation",
    "output",
    "classes",
    "config",
    "metrics",
    "history",
    "epoch",
    "version",
    "format",
    "dataset",
    "resume",
    "normalization",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=JSON)
def test_fuzzed_meta_loads_or_fails_cleanly(tmp_path, key, value) -> None:
    path = tmp_path / "fuzz.npz"
    path.write_bytes(_npz(_members(_meta(**{key: value}))))
    try:
        ckpt = checkpoint.load(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc)
        return
    assert Predictor(ckpt).model is not None  # whatever loads must also be usable
    _ = ckpt.classes
