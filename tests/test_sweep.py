"""Sweeps: the file format, the local executor, resuming after kill -9, pruning, and a real Ray head."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port
from helpers import address_space_limit, invoke

from mlpcli.runs.folder import list_runs
from mlpcli.training.threads import usable_cores

pytest.importorskip("optuna", reason="the sweep extra (optuna) is not installed: pip install '.[sweep]'")

QUICKSTART = Path(__file__).parent.parent / "configs" / "quickstart.yaml"


def _sweep_file(tmp_path: Path, body: str, name: str = "s") -> Path:
    base = tmp_path / "base.yaml"
    base.write_text(QUICKSTART.read_text().replace("epochs: 8", "epochs: 2").replace("[128]", "[16]"))
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nbase: base.yaml\n" + body)
    return path


GRID = """method: grid
metric: {name: val_accuracy, goal: maximize}
parameters:
  model.activation: {values: [relu, tanh]}
  optimizer.lr: {values: [0.05, 0.1]}
budget: {parallel: 2}
"""


def _by_params(doc: dict) -> dict[tuple, dict]:
    return {tuple(sorted(t["params"].items())): t for t in doc["trials"]}


def test_a_grid_runs_every_combination_once_as_ordinary_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("sweep", str(_sweep_file(tmp_path, GRID)), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["trials"]) == 4 and all(t["state"] == "complete" for t in doc["trials"])
    combos = {(t["params"]["model.activation"], t["params"]["optimizer.lr"]) for t in doc["trials"]}
    assert combos == {("relu", 0.05), ("relu", 0.1), ("tanh", 0.05), ("tanh", 0.1)}
    assert doc["best"]["value"] == max(t["value"] for t in doc["trials"])
    assert Path(doc["best"]["checkpoint"]).is_file()
    assert json.loads((tmp_path / "runs/sweeps/s/summary.json").read_text())["ranked"] == doc["ranked"]
    rows = [s for _, s in list_runs(tmp_path / "runs")]
    assert len(rows) == 4 and {r.sweep for r in rows} == {"s"} and all(r.status == "finished" for r in rows)
    # each trial's value is its run's best validation accuracy
    for t in doc["trials"]:
        status = json.loads((Path(t["run_dir"]) / "status.json").read_text())
        assert status["best_val_accuracy"] == pytest.approx(t["value"])
        threads = max(1, usable_cores() // 2)  # two at a time: together they never oversubscribe the cores
        assert f"threads: {threads}" in (Path(t["run_dir"]) / "config.yaml").read_text()
    text = invoke("sweep", str(tmp_path / "s.yaml")).stdout  # done already: nothing runs again, the table shows
    assert "trials ranked by val_accuracy" in text and "best: trial" in text


def test_invalid_trials_are_listed_one_line_each_before_anything_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    body = """method: grid
parameters:
  loss: {values: [cross_entropy, bce, mse]}
  optimizer.lr: {values: [0.1, -1]}
"""
    result = invoke("sweep", str(_sweep_file(tmp_path, body)))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4  # bce with softmax (x2 learning rates) and lr -1 (x2 other losses)
    assert sum("optimizer.lr: must be > 0" in line for line in lines) == 3  # every loss with lr -1
    assert all("loss: bce needs model.output sigmoid" in line or "optimizer.lr" in line for line in lines)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "method: grid\nparameters:\n  optimizer.lr: {distribution: log_uniform, min: 0.001, max: 0.1}\n",
            "a grid sweep needs values",
        ),
        ("method: random\nparameters:\n  optimizer.lr: {distribution: log_uniform, min: 0, max: 0.1}\n", "min > 0"),
        ("method: annealing\nparameters:\n  loss: {values: [mse]}\n", "method: must be one of"),
        ("parameters:\n  loss: {values: [mse]}\nbudget: {paralel: 2}\n", "did you mean parallel?"),
        ("parameters: {}\n", "parameters"),
    ],
)
def test_bad_sweep_files_name_the_key(tmp_path, monkeypatch, body: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("sweep", str(_sweep_file(tmp_path, body)))
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    body = (
        "method: grid\nparameters:\n  optimizer.lr: {values: [0.05, 1000.0]}\n  model.activation: {values: [linear]}\n"
    )
    doc = json.loads(invoke("sweep", str(_sweep_file(tmp_path, body)), "--json").stdout)
    states = {t["params"]["optimizer.lr"]: t for t in doc["trials"]}
    assert states[0.05]["state"] == "complete"
    assert states[1000.0]["state"] == "failed" and "the loss became" in states[1000.0]["reason"]


def test_a_random_search_with_pruning(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    body = """method: random
parameters:
  optimizer.lr: {distribution: log_uniform, min: 0.00001, max: 0.1}
  train.epochs: {values: [4]}
budget: {trials: 6, parallel: 1}
early_terminate: {type: median, min_epochs: 1}
seed: 3
"""
    doc = json.loads(invoke("sweep", str(_sweep_file(tmp_path, body)), "--json").stdout)
    assert len(doc["trials"]) == 6 and all(1e-5 <= t["params"]["optimizer.lr"] <= 0.1 for t in doc["trials"])
    finished = [t for t in doc["trials"] if t["state"] in ("complete", "pruned")]
    assert len(finished) == 6
    for t in doc["trials"][2:]:  # after two complete trials, a clearly worse one is stopped early
        if t["state"] == "pruned":
            rows = (Path(t["run_dir"]) / "metrics.csv").read_text().strip().splitlines()
            assert len(rows) - 1 < 4
            assert json.loads((Path(t["run_dir"]) / "status.json").read_text())["status"] == "pruned"


def test_kill_9_midway_then_the_same_command_finishes_every_trial_once(tmp_path) -> None:
    body = GRID.replace("budget: {parallel: 2}", "budget: {parallel: 1}").replace("[0.05, 0.1]", "[0.05, 0.1, 0.2]")
    sweep = _sweep_file(tmp_path, body)
    (tmp_path / "base.yaml").write_text((tmp_path / "base.yaml").read_text().replace("epochs: 2", "epochs: 30"))
    cmd = [sys.executable, "-m", "mlpcli", "sweep", str(sweep), "--json"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trials = tmp_path / "runs" / "sweeps" / "s" / "trials"
    while proc.poll() is None:  # kill once the second trial has started training
        started = [d for d in trials.glob("*") if (d / "status.json").exists()] if trials.exists() else []
        if len(started) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    combos = [(t["params"]["model.activation"], t["params"]["optimizer.lr"]) for t in doc["trials"]]
    assert sorted(combos) == sorted((a, lr) for a in ("relu", "tanh") for lr in (0.05, 0.1, 0.2))  # each once
    assert all(t["state"] == "complete" for t in doc["trials"])
    assert "again" in result.stderr  # it said it resumed and re-ran what was running
    states = {s.status for _, s in list_runs(tmp_path / "runs")}
    assert "killed" not in states and "superseded" in states  # the killed trial's folder says it was rerun


def test_missing_extras_are_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = _sweep_file(tmp_path, GRID)
    monkeypatch.setitem(sys.modules, "ray", None)
    result = invoke("sweep", str(sweep), "--executor", "ray", "--address", "127.0.0.1:1")
    assert result.exit_code == 1 and "[ray]'" in result.stderr and "pip install" in result.stderr
    monkeypatch.setitem(sys.modules, "optuna", None)
    result = invoke("sweep", str(sweep))
    assert result.exit_code == 1 and "[sweep]'" in result.stderr and "pip install" in result.stderr


@pytest.fixture
def ray_head(tmp_path):  # noqa: ANN201
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install '.[ray]'")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = free_port()
    head = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--block",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # SIGINT stops it, even under `&`
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    try:
        for _ in range(600):  # wait for the head's port (no time limit on the test itself)
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if head.poll() is not None:
                pytest.fail("ray start --head exited")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        # its own process group (its pid): the head and what it started, nothing else; `ray start --block`
        # shuts its processes down on SIGINT in a second or two (SIGTERM leaves it waiting)
        os.killpg(head.pid, signal.SIGINT)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def test_ray_runs_the_same_grid_with_the_same_results(tmp_path, monkeypatch, ray_head) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = _sweep_file(tmp_path, GRID)
    local = json.loads(invoke("sweep", str(sweep), "--out", "local", "--json").stdout)
    args = ["sweep", str(sweep), "--executor", "ray", "--address", ray_head, "--out", "cluster", "--json"]
    result = subprocess.run([sys.executable, "-m", "mlpcli", *args], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    remote = json.loads(result.stdout)
    a, b = _by_params(local), _by_params(remote)
    assert a.keys() == b.keys()
    for key in a:
        assert b[key]["state"] == "complete" and b[key]["value"] == a[key]["value"]
        # the run folder came back to the driver: no shared filesystem needed
        assert (Path(b[key]["run_dir"]) / "checkpoint.npz").is_file()
        assert (Path(b[key]["run_dir"]) / "metrics.csv").read_text().count("\n") == 3


class _Answers:
    """A driver that answers each epoch's report from a table: stop after the epochs listed."""

    def __init__(self, stop_after: set[int]) -> None:
        self.stop_after, self.asked = stop_after, []

    def report(self, number: int, epoch: int, metrics: dict, wait: bool = False) -> bool:
        self.asked.append((epoch, wait))
        return epoch in self.stop_after


@pytest.mark.parametrize(
    ("stop_after", "state", "epochs"), [({2}, "pruned", 2), ({3}, "complete", 3), (set(), "complete", 3)]
)
def test_a_prune_takes_effect_at_the_epoch_it_answers_and_a_full_trial_is_complete(
    tmp_path, stop_after, state, epochs
) -> None:
    from mlpcli.config import read_yaml
    from mlpcli.sweep.trial import TrialSpec, run_trial

    base = read_yaml(QUICKSTART)
    overrides = ["model.hidden=[8]", "train.epochs=3"]
    answers = _Answers(stop_after)
    spec = TrialSpec(0, "s", base, overrides, {}, "val_accuracy", True, str(tmp_path / "t"), pruning=True)
    result = run_trial(spec, answers)
    assert result["state"] == state and len(result["history"]) == epochs
    assert all(wait for _, wait in answers.asked)  # every epoch waited for the driver's answer
    status = json.loads((tmp_path / "t" / "status.json").read_text())
    assert status["status"] == ("pruned" if state == "pruned" else "finished") and status["epochs_done"] == epochs


RANDOM = """method: random
parameters:
  optimizer.lr: {distribution: log_uniform, min: 0.001, max: 0.3}
budget: {trials: 3}
seed: 5
"""


def test_a_rerun_of_a_random_search_continues_it_with_new_points(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = _sweep_file(tmp_path, RANDOM)
    assert invoke("sweep", str(sweep), "--json").exit_code == 0
    doc = json.loads(invoke("sweep", str(sweep), "--trials", "6", "--json").stdout)
    lrs = [t["params"]["optimizer.lr"] for t in doc["trials"]]
    assert len(lrs) == 6 and len(set(lrs)) == 6


def test_a_stale_journal_lock_left_by_a_crash_does_not_hang_the_next_run(tmp_path) -> None:
    sweep = _sweep_file(tmp_path, GRID.replace("budget: {parallel: 2}", "budget: {parallel: 1}"))
    cmd = [sys.executable, "-m", "mlpcli", "sweep", str(sweep), "--json"]
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True).returncode == 0
    folder = tmp_path / "runs" / "sweeps" / "s"
    (folder / "study.journal.lock").symlink_to(Path("runs/sweeps/s/study.journal"))  # what a crash mid-append leaves
    again = subprocess.run([*cmd, "--trials", "5"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr  # (the timeout only stops a hang from stalling the suite)


def test_an_edited_search_is_refused_under_the_old_study(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = _sweep_file(tmp_path, GRID.replace("budget: {parallel: 2}", "budget: {parallel: 1}"))
    assert invoke("sweep", str(sweep), "--json").exit_code == 0
    edited = sweep.read_text().replace("optimizer.lr: {values: [0.05, 0.1]}", "model.hidden: {values: [[8], [16]]}")
    sweep.write_text(edited.replace("val_accuracy, goal: maximize", "val_loss, goal: minimize"))
    result = invoke("sweep", str(sweep))
    assert result.exit_code == 1 and "another search" in result.stderr and "--out" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "method: grid\nparameters:\n"
            + "".join(f"  k{i}: {{values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}\n" for i in range(9))
            + "budget: {trials: 2}\n",
            "1,000,000,000 combinations",
        ),
        ("method: random\nparameters:\n  optimizer.lr: {values: [0.1]}\nseed: 1e29\n", "seed"),
        ("method: random\nparameters:\n  optimizer.lr: {distribution: uniform, min: 0.1, max: .inf}\n", "finite"),
        ("method: random\nparameters:\n  train.epochs: {distribution: int_uniform, min: 1, max: 1e300}\n", "epochs"),
    ],
)
def test_huge_grids_and_odd_values_are_one_line(tmp_path, monkeypatch, body, message) -> None:
    monkeypatch.chdir(tmp_path)
    with address_space_limit(3 * 1024**3):  # a grid built in memory fails here, not the machine
        result = invoke("sweep", str(_sweep_file(tmp_path, body)))
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output
