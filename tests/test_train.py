"""Training: the run folder, bit-exact resume, Ctrl-C, divergence, determinism."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlpcli.config import load_config
from mlpcli.errors import TrainingDiverged
from mlpcli.events import EpochEnd, EpochStart
from mlpcli.files import checkpoint
from mlpcli.nn.schedules import learning_rate
from mlpcli.training import service as training

SMALL = [
    "train.threads=1",  # bit-for-bit comparisons: results depend on the BLAS thread count
    "name=t",
    "data.dataset=mnist-sample",
    "data.validation=500",
    "model.hidden=[32]",
    "train.epochs=4",
    "train.batch_size=100",
]


def _cfg(*extra: str):
    return load_config(None, SMALL + list(extra))


def _train(run_dir: Path, *extra: str, callbacks=None, resume=None):
    cfg = _cfg(*extra)
    return training.run(training.prepare(cfg), run_dir, resume=resume, callbacks=callbacks)


def test_run_folder_holds_config_metrics_and_checkpoints(tmp_path) -> None:
    result = _train(tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == [".lock", "checkpoint.npz", "config.yaml", "last.npz", "metrics.csv", "status.json"]
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert load_config(tmp_path / "run" / "config.yaml") == _cfg()
    best = checkpoint.load(result.checkpoint)
    assert best.meta["epoch"] == result.history.best_epoch
    assert best.meta["metrics"]["test_accuracy"] == pytest.approx(result.test.accuracy)
    assert best.meta["config"]["model"]["hidden"] == [32]
    assert result.test.accuracy > 0.85


def _params(path: Path) -> dict[str, np.ndarray]:
    return checkpoint.load(path).params


def test_resume_after_an_interruption_is_bit_for_bit(tmp_path) -> None:
    extra = ("model.dropout=0.2", "optimizer.name=adam", "optimizer.lr=0.002")
    _train(tmp_path / "full", *extra)

    def stop_at_3(event: object) -> None:
        if isinstance(event, EpochStart) and event.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(training.Interrupted) as info:
        _train(tmp_path / "part", *extra, callbacks=[stop_at_3])
    assert info.value.epoch == 2 and info.value.last == tmp_path / "part" / "last.npz"
    _train(tmp_path / "part", *extra, resume=checkpoint.load(info.value.last))
    full, resumed = _params(tmp_path / "full" / "last.npz"), _params(tmp_path / "part" / "last.npz")
    for k in full:
        np.testing.assert_array_equal(full[k], resumed[k])
    strip = [
        {k: v for k, v in r.items() if k != "seconds"}
        for r in csv.DictReader((tmp_path / "full" / "metrics.csv").open())
    ]
    again = [
        {k: v for k, v in r.items() if k != "seconds"}
        for r in csv.DictReader((tmp_path / "part" / "metrics.csv").open())
    ]
    assert strip == again


def test_same_config_and_seed_give_identical_metrics(tmp_path) -> None:
    _train(tmp_path / "a")
    _train(tmp_path / "b")
    _train(tmp_path / "c", "seed=1")

    def rows(name: str) -> list[dict[str, str]]:
        return [
            {k: v for k, v in r.items() if k != "seconds"}
            for r in csv.DictReader((tmp_path / name / "metrics.csv").open())
        ]

    assert rows("a") == rows("b")
    assert rows("a") != rows("c")


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    _train(tmp_path / "run", "train.epochs=2")
    good = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    last = checkpoint.load(tmp_path / "run" / "last.npz")
    with pytest.raises(TrainingDiverged) as info:
        _train(tmp_path / "run", "train.epochs=4", "optimizer.lr=1e6", "schedule.name=constant", resume=last)
    message = str(info.value)
    assert "epoch 3, batch" in message and "lower learning rate" in message and "checkpoint.npz" in message
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == good
    checkpoint.load(tmp_path / "run" / "last.npz")


def test_early_stopping_stops_when_the_metric_stalls(tmp_path) -> None:
    # A learning rate so small nothing improves measurably after the first epochs.
    result = _train(
        tmp_path / "run",
        "train.epochs=30",
        "optimizer.lr=1e-9",
        "optimizer.name=sgd",
        "schedule.name=constant",
        "train.early_stopping={patience: 2, metric: val_accuracy}",
    )
    assert result.history.stopped_early and len(result.history.rows) < 30


def test_events_report_each_epoch(tmp_path) -> None:
    events: list[object] = []
    _train(tmp_path / "run", callbacks=[events.append])
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in ends] == [1, 2, 3, 4]
    assert ends[0].is_best


@pytest.mark.parametrize("name", ["constant", "step", "cosine"])
def test_schedules(name: str) -> None:
    cfg = load_config(None, [f"schedule.name={name}", "schedule.warmup_epochs=1", "schedule.step_size=2"]).schedule
    lrs = [learning_rate(cfg, 0.1, s, 10, 5) for s in range(50)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)  # linear warm-up over epoch 1
    if name == "constant":
        assert lrs[-1] == pytest.approx(0.1)
    elif name == "step":
        assert lrs[20] == pytest.approx(0.01) and lrs[40] == pytest.approx(0.001)
    else:
        assert lrs[10] == pytest.approx(0.1) and lrs[-1] < 0.001 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_ctrl_c_in_a_real_process_saves_last_and_exits_130(tmp_path) -> None:
    cmd = [sys.executable, "-m", "mlpcli", "train", "--out", str(tmp_path / "run")]
    cmd += [f"--set={s}" for s in [*SMALL, "train.epochs=500"]]
    # A shell that starts jobs in the background (`.ci/run &`) hands them SIGINT ignored, and Python
    # keeps ignoring it: give the child the default, as a terminal would.
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    last = tmp_path / "run" / "last.npz"
    deadline = time.monotonic() + 300  # a hang guard, not a speed assertion
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert last.exists(), proc.communicate()
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "resume with: mlpcli train --resume" in err
    assert "Traceback" not in err
    ckpt = checkpoint.load(last)
    assert ckpt.meta["epoch"] >= 1
    assert not [p for p in os.listdir(tmp_path / "run") if p.endswith(".tmp")]


def test_label_smoothing_trains_towards_the_smoothed_targets(tmp_path) -> None:
    eps, k = 0.2, 10
    result = _train(tmp_path / "smooth", f"label_smoothing={eps}")
    floor = -((1 - eps + eps / k) * np.log(1 - eps + eps / k) + (k - 1) * (eps / k) * np.log(eps / k))
    rows = list(csv.DictReader((tmp_path / "smooth" / "metrics.csv").open()))
    assert all(float(r["train_loss"]) >= floor for r in rows)  # no network fits smoothed targets below their entropy
    assert float(rows[-1]["val_loss"]) < floor  # validation reports the plain cross-entropy
    assert result.test.accuracy > 0.85
    assert checkpoint.load(result.checkpoint).meta["config"]["label_smoothing"] == eps
