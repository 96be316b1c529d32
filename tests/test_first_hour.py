"""A newcomer's first hour: the terminal (NO_COLOR, pipes, narrow windows), messages, and mlpcli outside the clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, invoke

REPO = Path(__file__).parent.parent
QUICK = ["-c", "quickstart", "--set", "model.hidden=[16]", "--epochs", "1"]


def _mlpcli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    full_env.pop("COLUMNS", None) if "COLUMNS" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "mlpcli", *args], cwd=cwd, capture_output=True, text=True, env=full_env
    )


def test_digits_stay_legible_under_no_color(monkeypatch) -> None:
    from rich.console import Console

    from mlpcli.cli import render

    monkeypatch.setattr(render, "console", Console(force_terminal=True, color_system="truecolor", no_color=True))
    digit = np.zeros((28, 28), np.float32)
    digit[4:24, 12:16] = 1.0
    plain = render.digit_block(digit).plain
    assert "█" in plain and " " in plain  # shapes, not one colourless block of half-blocks


def test_a_closed_pipe_ends_quietly_with_exit_0(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for args in (["gradcheck"], ["data", "show", "-c", "quickstart"], ["config", "list"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpcli", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.readline()
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read().decode()
        assert proc.wait() == 0 and err == "", (args, err)


def test_tables_written_to_a_file_keep_full_names(tmp_path) -> None:
    result = _mlpcli("gradcheck", cwd=tmp_path)
    assert "leaky_relu" in result.stdout and "cross_entropy" in result.stdout and "…" not in result.stdout


def test_runs_never_cuts_the_folder_at_80_columns(tmp_path) -> None:
    assert _mlpcli("train", *QUICK, cwd=tmp_path).returncode == 0
    (folder,) = (tmp_path / "runs" / "quickstart").iterdir()
    shown = _mlpcli("runs", cwd=tmp_path, COLUMNS="80").stdout
    assert str(folder.relative_to(tmp_path)) in shown and max(len(line) for line in shown.splitlines()) <= 80


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "optimizer.lr=-1"], "the command line's optimizer.lr=-1: optimizer.lr: must be > 0"),
        (["--epochs", "0"], "the command line's train.epochs=0"),
        (["--set", "epochs=5"], "did you mean train.epochs?"),
        (["--threads", "abc"], "train.threads: must be auto or a count"),
    ],
)
def test_mistakes_on_the_command_line_are_blamed_on_it(tmp_path, monkeypatch, args, expected) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "-c", str(CONFIGS / "quickstart.yaml"), *args)
    assert result.exit_code == 1 and expected in result.stderr and "quickstart.yaml" not in result.stderr
    assert result.stderr.count("must be") <= 1 and len(result.stderr.strip().splitlines()) == 1


def test_a_network_file_given_to_train_says_what_it_is(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["train", "-c", "toy"], ["config", "show", "toy"], ["gradcheck", "-c", "toy"]):
        result = invoke(*args)
        assert result.exit_code == 1 and "is a network file" in result.stderr and "trace" in result.stderr, args


def test_shipped_configs_work_by_name_outside_the_clone(tmp_path) -> None:
    listed = json.loads(_mlpcli("config", "list", "--json", cwd=tmp_path).stdout)
    names = {row["name"] for row in listed}
    assert {"mnist", "quickstart", "toy", "sweeps/lecture-activations", "papers/simard03-800-elastic"} <= names
    shown = _mlpcli("config", "show", "mnist", cwd=tmp_path)
    assert shown.returncode == 0 and "name: mnist" in shown.stdout
    (tmp_path / "my.yaml").write_text(shown.stdout)
    assert _mlpcli("config", "show", "my.yaml", "--set", "train.epochs=3", cwd=tmp_path).returncode == 0
    assert _mlpcli("train", *QUICK, cwd=tmp_path).returncode == 0


def test_install_hints_name_the_extra_as_it_is_installed_here(tmp_path, monkeypatch) -> None:
    from mlpcli.errors import install_hint

    monkeypatch.chdir(tmp_path)
    assert install_hint("plot") == "pip install 'mlpcli[plot]'"
    monkeypatch.chdir(REPO)  # inside the clone, the path form
    assert install_hint("plot") == "pip install '.[plot]'"


def test_a_failed_json_command_still_prints_one_json_document(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["train", "-c", "nonexistent", "--json"], ["eval", "nothing.npz", "--json"], ["runs", "x", "--json"]):
        result = invoke(*args)
        assert result.exit_code == 1 and set(json.loads(result.stdout)) == {"error"}, args


def test_compare_tells_two_sweeps_trials_apart() -> None:
    from mlpcli.cli.runs_cmd import _labels

    assert _labels([Path("runs/sweeps/a/trials/000"), Path("runs/sweeps/b/trials/000")]) == [
        "a/trials/000",
        "b/trials/000",
    ]


def test_predict_of_a_csv_shows_its_first_rows_and_inspect_one_w_form(sample_model, tmp_path) -> None:
    from helpers import write_csv

    from mlpcli.data.load import load_dataset

    data = load_dataset("mnist-sample")
    write_csv(tmp_path / "test.csv", data.test_x[:12], None)
    shown = invoke("predict", str(tmp_path / "test.csv"), "-c", str(sample_model)).stdout
    assert "row 1:" in shown and "row 10:" in shown and "2 more rows" in shown
    text = invoke("inspect", str(sample_model)).stdout
    assert text.count("128 x 784") == 2 and "784x128" not in text


def _in_a_terminal(*args: str, cwd: Path, columns: int, **extra_env: str) -> str:
    """What mlpcli writes to a pseudo-terminal of the given width (stdout and stderr, escapes removed)."""
    import fcntl
    import pty
    import re
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm", **extra_env}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpcli", *args], cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the program ended
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    proc.wait()
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace")).replace("\r", "")


def test_long_lines_wrap_between_words_on_a_terminal(tmp_path) -> None:
    message = _mlpcli("train", "-c", "quickstart", "--set", "optimizer.lr=-1", cwd=tmp_path).stderr.strip()
    assert len(message) > 60 and len(message.splitlines()) == 1  # one line in a pipe, for grep
    shown = _in_a_terminal("train", "-c", "quickstart", "--set", "optimizer.lr=-1", cwd=tmp_path, columns=40)
    lines = [line.rstrip() for line in shown.strip().splitlines()]
    assert len(lines) > 1 and max(map(len, lines)) <= 40
    assert " ".join(lines).split() == message.split()  # every word whole: no `norma` / `lize`


@pytest.mark.parametrize(
    "command",
    [["train"], ["eval"], ["predict"], ["runs"], ["compare"], ["sweep"], ["serve"], ["data", "show"], ["trace"], []],
)
def test_help_says_flags_are_flags_and_names_arguments(command) -> None:
    shown = invoke(*command, "--help").stdout
    assert "<bool>" not in shown and "list[" not in shown and "{" not in shown, shown


def test_show_completion_prints_the_named_shells_script(tmp_path) -> None:
    assert _mlpcli("--show-completion", "zsh", cwd=tmp_path).stdout.startswith("#compdef mlpcli")
    assert "complete --command mlpcli" in _mlpcli("--show-completion", "fish", cwd=tmp_path).stdout
    assert "complete -o default -F _mlpcli_completion mlpcli" in _mlpcli("--show-completion=bash", cwd=tmp_path).stdout
    refused = _mlpcli("--show-completion", "tcsh", cwd=tmp_path)
    assert refused.returncode != 0 and "'tcsh' is not a shell" in refused.stderr and refused.stdout == ""


def test_every_best_on_screen_is_the_epoch_the_checkpoint_holds(tmp_path) -> None:
    from rich.console import Console

    from mlpcli.cli.render import curves_table
    from mlpcli.runs.compare import compare

    # accuracy peaks at epoch 1, loss at epoch 2: "best" is epoch 2 (the checkpoint's), everywhere
    rows = [
        {"epoch": 1, "train_loss": 0.5, "val_loss": 0.30, "train_accuracy": 0.9, "val_accuracy": 0.9826},
        {"epoch": 2, "train_loss": 0.4, "val_loss": 0.25, "train_accuracy": 0.91, "val_accuracy": 0.9810},
        {"epoch": 3, "train_loss": 0.3, "val_loss": 0.28, "train_accuracy": 0.92, "val_accuracy": 0.9800},
    ]
    console = Console(width=120, record=True)
    console.print(curves_table(rows, 2, "val_loss"))
    text = console.export_text()
    assert "best: epoch 2, lowest val loss" in text and "98.10%" in text and "98.26%" in text.split("98.10%")[0]
    ran = _mlpcli("train", *QUICK[:-2], "--epochs", "4", "--json", cwd=tmp_path)
    doc = json.loads(ran.stdout)
    run_dir = tmp_path / doc["run_dir"]
    best = next(r for r in doc["history"] if r["epoch"] == doc["best_epoch"])
    assert doc["best_by"] == "val_loss"
    status = json.loads((run_dir / "status.json").read_text())
    assert status["best_epoch"] == doc["best_epoch"] and status["best_val_accuracy"] == best["val_accuracy"]
    from mlpcli.files import checkpoint

    assert checkpoint.load(run_dir / "checkpoint.npz").meta["epoch"] == doc["best_epoch"]
    compared = compare([run_dir, run_dir])["runs"][0]["best"]
    assert compared["val_accuracy"] == pytest.approx(best["val_accuracy"]) and compared["epoch"] == doc["best_epoch"]


def test_the_sweep_tables_never_cut_a_folder_nor_print_an_empty_header() -> None:
    from rich.console import Console

    from mlpcli.cli import sweep_cmd

    table = sweep_cmd.SweepTable("val_accuracy", live=True)
    narrow = Console(width=60, height=14, record=True, force_terminal=True)
    narrow.print(table.table())
    assert narrow.export_text().strip() == ""  # no header over nothing
    for i in range(30):
        state = "running" if i in (3, 29) else "complete"
        table.rows[i] = {"params": {"optimizer.lr": 0.0031622776601683794}, "epoch": 2, "value": 0.9, "state": state}
    old = sweep_cmd.console
    try:
        sweep_cmd.console = narrow
        narrow.print(table.table())
        shown = narrow.export_text()
        assert len(shown.splitlines()) <= 14 and "lr=0.003162" in shown and "0.00316227" not in shown
        assert "   3 │" in shown and "  29 │" in shown  # running trials stay in view
        folder = "runs/sweeps/a-sweep-with-a-long-name/trials/000"
        trials = [
            {
                "number": i,
                "params": {"optimizer.lr": 0.1 * (i + 1), "model.hidden": [64]},
                "value": 0.9,
                "state": "complete",
                "run_dir": folder[:-1] + str(i),
            }
            for i in range(3)
        ]
        doc = {
            "name": "a-sweep",
            "metric": {"name": "val_accuracy"},
            "trials": trials,
            "ranked": [0, 1, 2],
            "best": {**trials[0], "checkpoint": folder + "/checkpoint.npz"},
            "importance": None,
        }
        for width in (60, 200):
            sweep_cmd.console = Console(width=width, record=True)
            sweep_cmd._final(doc)
            text = sweep_cmd.console.export_text()
            assert all(t["run_dir"] in text for t in trials) and "hidden" not in text.split("best:")[0]
    finally:
        sweep_cmd.console = old


def test_data_where_never_cuts_a_path(tmp_path) -> None:
    cache = tmp_path / "a-cache-folder-with-a-rather-long-name-so-that-no-table-column-could-hold-it"
    (cache / "mnist").mkdir(parents=True)
    (cache / "mnist" / ".train-images-idx3-ubyte.gz.1234.part").write_bytes(b"\x1f\x8b partial")
    shown = _in_a_terminal("data", "where", cwd=tmp_path, columns=80, MLPCLI_DATA_DIR=str(cache))
    where = json.loads(_mlpcli("data", "where", "--json", cwd=tmp_path, MLPCLI_DATA_DIR=str(cache)).stdout)
    folders = {str(Path(row["path"]).parent) for row in where["files"] if row["path"]}
    assert str(cache / "mnist") in folders and "…" not in shown
    assert all(folder in shown.replace("\n", "") for folder in folders)


def test_best_by_chooses_the_checkpoints_epoch(tmp_path) -> None:
    ran = _mlpcli("train", *QUICK[:-2], "--epochs", "5", "--set", "train.best_by=val_accuracy", "--json", cwd=tmp_path)
    doc = json.loads(ran.stdout)
    accuracies = [r["val_accuracy"] for r in doc["history"]]
    assert doc["best_by"] == "val_accuracy" and doc["best_epoch"] == accuracies.index(max(accuracies)) + 1
    both = _mlpcli(
        "train",
        *QUICK,
        "--set",
        "train.best_by=val_accuracy",
        "--set",
        "train.early_stopping.metric=val_loss",
        cwd=tmp_path,
    )
    assert both.returncode == 1 and "one metric chooses the best epoch" in both.stderr


# ---- the first hour, continued -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suggested"), [("mnsit", "mnist"), ("quikstart", "quickstart"), ("fashion-mnsit", "fashion-mnist")]
)
def test_a_mistyped_config_name_suggests_the_shipped_one(tmp_path, monkeypatch, name, suggested) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "-c", name)
    assert result.exit_code == 1 and f"did you mean {suggested}?" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("override", "key", "close"),
    [("optimzer.lr=0.1", "optimzer", "optimizer"), ("model.hiden=[8]", "model.hiden", "hidden"),
     ("train.epoch=2", "train.epoch", "epochs")],
)  # fmt: skip
def test_a_set_typo_is_blamed_on_the_command_line_with_the_closest_key(tmp_path, monkeypatch, override, key, close):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "-c", "quickstart", "--set", override)
    assert result.exit_code == 1
    assert f"the command line's {override}: {key}: unknown key; did you mean {close}?" in result.stderr
    assert "quickstart.yaml" not in result.stderr


def test_serve_refuses_a_model_of_points_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("train", "-c", "quickstart", "--set", "data.dataset=spiral", "--set", "data.validation=50",
                  "--set", "model.hidden=[8]", "--epochs", "1", "--out", "plane").exit_code == 0  # fmt: skip
    pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install '.[serve]'")
    result = invoke("serve", "plane", "--port", "0")
    assert result.exit_code == 1 and "not of 28x28 pictures" in result.stderr and "playground" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_png_without_the_plot_extra_shows_the_comparison_and_names_the_install(tmp_path, monkeypatch) -> None:
    import builtins

    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        assert invoke("train", *QUICK, "--out", name).exit_code == 0
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):  # the plot extra not installed
        if name.split(".")[0] == "matplotlib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = invoke("compare", "a", "b", "--png", "cmp.png")
    assert result.exit_code == 1
    assert "learning curves" in result.stdout or "final" in result.stdout  # the comparison itself is shown
    assert "pip install" in result.stderr and "plot" in result.stderr and not (tmp_path / "cmp.png").exists()


def test_the_end_of_run_sparkline_shows_the_whole_curve_downsampled() -> None:
    from mlpcli.cli.render import SPARK_WIDTH, sparkline

    falling = [1.0 / (e + 1) for e in range(360)]
    line = sparkline(falling)
    assert len(line) == SPARK_WIDTH and line[0] == "█" and line[-1] == "▁"  # first epoch high, last low: not cut
    assert sparkline([0.5, None, 0.7]) == "▁ █" and sparkline([]) == ""


def test_the_live_bar_shows_no_loss_before_the_first_batch(monkeypatch) -> None:
    from rich.console import Console

    from mlpcli.cli import train_render
    from mlpcli.events import EpochStart, TrainStart

    monkeypatch.setattr(train_render, "console", Console(force_terminal=True, width=120, record=True))
    renderer = train_render.TrainRenderer(live=True, quiet=False)
    renderer(TrainStart(3, 0, 10, 10, "val_loss"))
    renderer(EpochStart(1, 0.1))
    shown = renderer.progress.get_renderable()
    text = Console(width=120, record=True)
    text.print(shown)
    renderer.close()
    shown = text.export_text()
    assert "nan" not in shown and "loss –" in shown, shown
