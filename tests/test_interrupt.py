"""A run survives an interruption at any moment: every phase of `mlpcli train` is cut by every signal (SIGINT,
SIGTERM, kill -9), then `--resume` finishes exactly what is missing, bit for bit the run that was never cut,
or says in one line why it cannot (nothing was saved yet)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpcli.files import checkpoint

CONFIG = ["name=cut", "data.dataset=mnist-sample", "data.validation=500", "model.hidden=[16]", "train.epochs=3"]
ARGS = [x for kv in CONFIG for x in ("--set", kv)] + ["--set", "train.threads=1", "-q"]

# The child runs the real CLI; at the phase named, it signals itself (a phase without an event is found by
# wrapping the function that does it).
CHILD = r"""
import os, signal, sys
phase, sig, out = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3]
fire = lambda: os.kill(os.getpid(), sig)
from mlpcli.events import BatchEnd, TrainStart
from mlpcli.training import service
from mlpcli.runs import folder as run_folder
from mlpcli.training.tracking import Trackers

if phase in ("start", "mid-epoch"):
    original = service.emit
    def emit(callbacks, event):
        if phase == "start" and isinstance(event, TrainStart):
            fire()
        if phase == "mid-epoch" and isinstance(event, BatchEnd) and event.epoch == 2 and event.batch == 3:
            fire()
        return original(callbacks, event)
    service.emit = emit
    import mlpcli.training.loop as loop
    loop.emit = emit
elif phase == "after-last-checkpoint":
    original = service._finish_checkpoints
    def finish(*a, **k):
        fire()
        return original(*a, **k)
    service._finish_checkpoints = finish
elif phase == "test-report":
    original = service.evaluate_arrays
    def evaluate(*a, **k):
        report = original(*a, **k)
        fire()
        return report
    service.evaluate_arrays = evaluate
elif phase == "final-status":
    original = run_folder.RunFolder.write_status
    def write_status(self, status):
        if status.status == "finished":
            fire()
        return original(self, status)
    run_folder.RunFolder.write_status = write_status
elif phase == "tracking":
    original = Trackers.end
    def end(self, status):
        fire()
        return original(self, status)
    Trackers.end = end
sys.argv = ["mlpcli", "train", "--out", out, *sys.argv[4:]]
from mlpcli.cli.main import main
main()
"""

PHASES = ["start", "mid-epoch", "after-last-checkpoint", "test-report", "final-status", "tracking"]
SIGNALS = ["SIGINT", "SIGTERM", "SIGKILL"]


def _mlpcli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlpcli", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run never cut."""
    folder = tmp_path_factory.mktemp("whole")
    done = _mlpcli("train", "--out", "run", *ARGS, cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "run"


def _same(a: Path, b: Path) -> None:
    for name in ("last.npz", "checkpoint.npz"):
        x, y = checkpoint.load(a / name), checkpoint.load(b / name)
        for key in x.params:
            np.testing.assert_array_equal(x.params[key], y.params[key], err_msg=f"{name} {key}")
        assert x.meta["epoch"] == y.meta["epoch"]
    sa, sb = (json.loads((p / "status.json").read_text()) for p in (a, b))
    assert sb["status"] == "finished" and sa["test_accuracy"] == sb["test_accuracy"]
    assert (a / "metrics.csv").read_text().count("\n") == (b / "metrics.csv").read_text().count("\n")


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("phase", PHASES)
def test_a_run_cut_at_any_phase_by_any_signal_resumes_to_the_same_end(tmp_path, whole, phase, sig) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, phase, sig, "run", *ARGS], cwd=tmp_path, capture_output=True, text=True
    )
    run = tmp_path / "run"
    ended = json.loads((run / "status.json").read_text()) if (run / "status.json").is_file() else {}
    if ended.get("status") == "finished":  # cut after the run was saved whole: nothing is left to do
        assert phase in ("final-status", "tracking") and child.returncode in (0, -signal.SIGKILL), child.stderr
        _same(whole, run)
        again = _mlpcli("train", "--resume", str(run / "last.npz"), cwd=tmp_path)
        assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1  # says why, in one line
        return
    assert child.returncode != 0
    if not (run / "last.npz").is_file():  # cut before the first epoch was saved
        assert phase in ("start", "mid-epoch") or sig == "SIGKILL"
        again = _mlpcli("train", "--resume", str(run), cwd=tmp_path)
        assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1, again.stderr
        return
    if sig != "SIGKILL":
        assert "--resume" in child.stderr, child.stderr  # the way on is printed
    resumed = _mlpcli("train", "--resume", str(run / "last.npz"), "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    _same(whole, run)
    assert os.listdir(run) == os.listdir(whole) or set(os.listdir(whole)) <= set(os.listdir(run))
