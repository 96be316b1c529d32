"""Where features meet: resume, the default model, eval of CSV models, shared folders, signals, names, long runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TINY_SPEC
from helpers import CONFIGS, invoke, write_csv

from mlpcli.config import load_config
from mlpcli.data import download
from mlpcli.data.load import load_dataset
from mlpcli.errors import ConfigError
from mlpcli.events import EpochStart
from mlpcli.files import checkpoint
from mlpcli.files.locks import FileLock, is_held
from mlpcli.runs.folder import RunFolder
from mlpcli.sweep.spec import load_sweep
from mlpcli.training import service as training
from mlpcli.training import snapshot

QUICK = ["-c", str(CONFIGS / "quickstart.yaml"), "--set", "model.hidden=[16]", "--epochs", "2"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _one_run(root: Path) -> Path:
    (folder,) = [p for p in root.iterdir() if p.is_dir()]
    return folder


def _trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunFolder:
    """Train QUICK in tmp_path (the cwd), as a user would; its run folder."""
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK).exit_code == 0
    return RunFolder(_one_run(tmp_path / "runs" / "quickstart"))


# ---- 1, 2: resume writes only into the run that made the folder ---------------------------------


def test_resume_of_a_copied_checkpoint_never_touches_the_users_files(tmp_path, monkeypatch) -> None:
    run = _trained(tmp_path, monkeypatch)
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("config.yaml", "metrics.csv", "checkpoint.npz"):
        (mine / name).write_text(f"the user's own {name}\n")
    (mine / "model.npz").write_bytes(run.last.read_bytes())
    before = _snapshot(mine)
    result = invoke("train", "--resume", str(mine / "model.npz"), "--epochs", "3", "--json")
    assert result.exit_code == 0, result.output
    assert _snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == sorted(before)
    new = RunFolder(tmp_path / json.loads(result.stdout)["run_dir"])
    assert new.path.parent == tmp_path / "runs" / "quickstart" and new.read_status().epochs_done == 3


def test_a_checkpoint_without_resume_state_is_refused_before_anything_is_written(tmp_path, monkeypatch) -> None:
    run = _trained(tmp_path, monkeypatch)
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "best.npz").write_bytes(run.checkpoint.read_bytes())
    ckpt = checkpoint.load(lone / "best.npz")
    del ckpt.meta["resume"]
    checkpoint.save(lone / "best.npz", ckpt)
    result = invoke("train", "--resume", str(lone / "best.npz"), "--epochs", "4")
    assert result.exit_code == 1 and "holds no resume state" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "built-in defaults" not in result.output
    assert sorted(p.name for p in lone.iterdir()) == ["best.npz"]


def test_a_finished_run_is_refused_and_says_how_to_train_longer(tmp_path, monkeypatch) -> None:
    run = _trained(tmp_path, monkeypatch)
    before = _snapshot(run.path)
    result = invoke("train", "--resume", str(run.last))
    assert result.exit_code == 1 and "finished all 2 epochs" in result.stderr and "--epochs" in result.stderr
    assert _snapshot(run.path) == before
    assert invoke("runs", "--json").stdout.count('"epochs_done": 2') == 1


def test_changes_on_resume_are_recorded_from_that_epoch_never_rewriting_the_past(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(CONFIGS / "quickstart.yaml", ["model.hidden=[16]", "train.epochs=3"])

    def stop_at_2(event: object) -> None:
        if isinstance(event, EpochStart) and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(training.Interrupted):
        training.run(training.prepare(cfg), tmp_path / "r", callbacks=[stop_at_2])
    config_before = (tmp_path / "r" / "config.yaml").read_text()
    result = invoke("train", "--resume", "r/last.npz", "--epochs", "1")  # a total below what it did
    assert result.exit_code == 1 and "stopped after epoch 1 of 3; --epochs is the total" in result.stderr
    result = invoke("train", "--resume", "r/last.npz", "--set", "optimizer.lr=0.01", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_dir"] == "r"
    assert (tmp_path / "r" / "config.yaml").read_text() == config_before  # epoch 1 ran at 0.05
    status = RunFolder(tmp_path / "r").read_status()
    assert status.status == "finished" and status.epochs_done == 3
    assert status.resumes[-1]["after_epoch"] == 1
    assert status.resumes[-1]["changes"] == {"optimizer.lr": [0.05, 0.01]}


# ---- 3: the default model -----------------------------------------------------------------------


def _fake_run(root: Path, name: str, source: RunFolder, **status: object) -> Path:
    folder = root / "runs" / name / "20990101-000000"
    folder.mkdir(parents=True)
    (folder / "checkpoint.npz").write_bytes(source.checkpoint.read_bytes())
    doc = json.loads(source.status_file.read_text())
    doc.update(status)
    (folder / "status.json").write_text(json.dumps(doc))
    return folder


def test_the_default_model_is_never_a_sweep_trial_or_a_run_at_chance(tmp_path, monkeypatch) -> None:
    real = _trained(tmp_path, monkeypatch)
    _fake_run(tmp_path, "trial", real, sweep="lecture", trial=3, started="2099-01-01T00:00:00")
    _fake_run(tmp_path, "chance", real, at_chance=True, test_accuracy=0.107, started="2099-01-02T00:00:00")
    result = invoke("eval", "--json")
    assert result.exit_code == 0, result.output
    shown = real.checkpoint.relative_to(tmp_path)
    assert f"using {shown} (quickstart, test accuracy" in result.stderr
    assert json.loads(result.stdout)["checkpoint"] == str(shown)


def test_a_run_folder_is_accepted_wherever_a_checkpoint_is(tmp_path, monkeypatch, sample_digits_png) -> None:
    run = _trained(tmp_path, monkeypatch).path
    assert invoke("eval", str(run), "--json").exit_code == 0
    assert invoke("predict", str(sample_digits_png), "-c", str(run), "--json").exit_code == 0
    pytest.importorskip("safetensors")
    assert invoke("export", str(run), "-o", "m.safetensors").exit_code == 0


@pytest.fixture
def sample_digits_png(tmp_path) -> Path:
    from PIL import Image

    digit = load_dataset("mnist-sample").test_x[0].reshape(28, 28)
    path = tmp_path / "digit.png"
    Image.fromarray(255 - digit).resize((112, 112)).save(path)
    return path


# ---- 4: eval evaluates what the model was tested on ----------------------------------------------


def test_eval_of_a_csv_trained_model_reads_its_csv_test_set(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = load_dataset("mnist-sample")
    write_csv(tmp_path / "train.csv", data.train_x[:1500], data.train_y[:1500])
    write_csv(tmp_path / "test.csv", data.test_x[:300], data.test_y[:300])
    args = ["--set", "data.dataset=train.csv", "--set", "data.test=test.csv", "--set", "data.validation=0"]
    trained = invoke("train", *QUICK, *args, "--json")
    assert trained.exit_code == 0, trained.output
    accuracy = json.loads(trained.stdout)["test_accuracy"]
    run = json.loads(trained.stdout)["run_dir"]
    doc = json.loads(invoke("eval", run, "--json").stdout)
    assert doc["n"] == 300 and doc["accuracy"] == pytest.approx(accuracy) and doc["accuracy"] > 0.5
    doc = json.loads(invoke("eval", run, "--dataset", "test.csv", "--json").stdout)
    assert doc["n"] == 300 and doc["dataset"] == "test.csv" and doc["accuracy"] == pytest.approx(accuracy)


def test_eval_of_nothing_is_an_error_not_zero_percent(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = load_dataset("mnist-sample")
    write_csv(tmp_path / "train.csv", data.train_x[:800], data.train_y[:800])
    trained = invoke("train", *QUICK, "--set", "data.dataset=train.csv", "--set", "data.validation=100", "--json")
    assert trained.exit_code == 0, trained.output
    result = invoke("eval", json.loads(trained.stdout)["run_dir"])
    assert result.exit_code == 1 and "no test images to evaluate" in result.stderr


# ---- 5, 6: shared caches and planted symlinks -------------------------------------------------


def test_two_downloads_into_one_cache_both_end_verified(serve, monkeypatch, isolated_env) -> None:
    server = serve()
    server.behaviours["slow"] = "slow"
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("slow"))
    results: list[object] = []

    def fetch() -> None:
        try:
            results.append(download.fetch(TINY_SPEC))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join()
    assert all(isinstance(r, dict) for r in results), results
    assert all(s.state == "verified" for s in download.status(TINY_SPEC))
    folder = isolated_env / TINY_SPEC.name
    assert not list(folder.glob("*.part"))


def test_a_planted_part_symlink_never_redirects_a_download(serve, monkeypatch, isolated_env, tmp_path) -> None:
    server = serve()
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("good"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = isolated_env / TINY_SPEC.name
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz.part").symlink_to(victim)
    download.fetch(TINY_SPEC)
    assert victim.read_text() == "precious"


def test_a_planted_lock_symlink_is_refused_and_its_target_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".lock").symlink_to(victim)
    result = invoke("train", *QUICK, "--out", "out")
    assert result.exit_code == 1 and "symlink" in result.stderr
    assert victim.read_text() == "precious"


# ---- 7: SIGTERM ends training like Ctrl-C -----------------------------------------------------


def test_sigterm_ends_training_as_interrupted_with_a_resume_hint(tmp_path) -> None:
    args = [*QUICK[:4], "--epochs", "400", "--out", "victim"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpcli", "train", *args], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    last = tmp_path / "victim" / "last.npz"
    while not last.exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 143, err
    assert "resume with: mlpcli train --resume victim/last.npz" in err
    assert RunFolder(tmp_path / "victim").read_status().status == "interrupted"


# ---- 8: names are single folder names -----------------------------------------------------------


@pytest.mark.parametrize("name", ["../../elsewhere", "/tmp/abs", "..", "a/b"])
def test_run_names_that_leave_the_runs_folder_are_refused(tmp_path, monkeypatch, name) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", *QUICK, "--set", f"name={name}")
    assert result.exit_code == 1 and "single folder name" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "elsewhere").exists()


def test_a_sweep_named_dotdot_is_refused(tmp_path) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        f"name: '..'\nbase: {CONFIGS / 'quickstart.yaml'}\nparameters:\n  optimizer.lr: {{values: [0.1]}}\n"
    )
    with pytest.raises(ConfigError, match="single folder name"):
        load_sweep(sweep)


# ---- 9: whatever mlpcli writes, mlpcli loads ----------------------------------------------------


def test_a_checkpoint_of_an_absurdly_long_run_still_loads(tmp_path) -> None:
    cfg = load_config(CONFIGS / "quickstart.yaml", ["model.hidden=[8]", "train.epochs=1"])
    p = training.prepare(cfg)
    training.run(p, tmp_path / "r")
    row = p.history.rows[-1]
    p.history.rows.extend({**row, "epoch": e} for e in range(2, 40_001))  # 40,000 epochs of history
    p.state.epoch = 40_000
    snapshot.save(p, tmp_path / "r" / "long.npz", {}, row)
    loaded = checkpoint.load(tmp_path / "r" / "long.npz")
    assert loaded.meta["epoch"] == 40_000 and len(loaded.meta["history"]) <= snapshot.META_HISTORY


# ---- 10: a lock scan never fails a writer -----------------------------------------------------


def test_scans_of_a_lock_never_make_a_writer_fail(tmp_path) -> None:
    lock_path = tmp_path / ".lock"
    lock_path.write_text("999999999")  # a dead writer's pid, as a killed run leaves it
    stop = threading.Event()

    def scan() -> None:
        while not stop.is_set():
            is_held(lock_path)

    scanners = [threading.Thread(target=scan) for _ in range(2)]
    for t in scanners:
        t.start()
    try:
        for _ in range(300):
            FileLock(lock_path).acquire().release()
    finally:
        stop.set()
        for t in scanners:
            t.join()
