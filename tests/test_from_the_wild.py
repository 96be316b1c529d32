"""Inputs people actually have: pictures, files and mirrors from the wild, and values that once reached a traceback."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest
from conftest import TINY, TINY_SPEC
from helpers import CONFIGS, address_space_limit, invoke, write_csv
from PIL import Image, ImageDraw

from mlpcli.data import download
from mlpcli.data.cache import dataset_dir
from mlpcli.data.load import load_dataset
from mlpcli.errors import DataError

QUICK = ["-c", str(CONFIGS / "quickstart.yaml"), "--set", "model.hidden=[16]", "--epochs", "2"]


# ---- pictures -----------------------------------------------------------------------------------


def test_a_one_on_paper_on_a_darker_desk_is_a_one(sample_model, tmp_path) -> None:
    img = Image.new("L", (300, 300), 50)  # the desk
    draw = ImageDraw.Draw(img)
    draw.rectangle([30, 20, 280, 285], fill=230)  # the sheet, most of the picture
    draw.line([(150, 60), (150, 250)], fill=20, width=12)  # a "1"
    img.save(tmp_path / "one.png")
    doc = json.loads(invoke("predict", str(tmp_path / "one.png"), "-c", str(sample_model), "--json").stdout)
    assert doc[0]["prediction"] == 1


def test_white_strokes_on_a_transparent_canvas_are_read_by_their_alpha(sample_model, tmp_path) -> None:
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(140, 40), (140, 240)], fill=(255, 255, 255, 255), width=18)
    img.save(tmp_path / "clear.png")
    result = invoke("predict", str(tmp_path / "clear.png"), "-c", str(sample_model), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["prediction"] == 1


def test_raw_on_a_light_background_warns_and_says_how(sample_model, tmp_path) -> None:
    digit = load_dataset("mnist-sample").test_x[0].reshape(28, 28)
    Image.fromarray(255 - digit).save(tmp_path / "inverted.png")
    Image.fromarray(digit).save(tmp_path / "mnist-form.png")
    result = invoke("predict", str(tmp_path / "inverted.png"), "--raw", "-c", str(sample_model), "--no-show")
    assert result.exit_code == 0 and "light background" in result.stderr and "leave out --raw" in result.stderr
    doc = json.loads(
        invoke("predict", str(tmp_path / "inverted.png"), "--raw", "-c", str(sample_model), "--json").stdout
    )
    assert "light background" in doc[0]["warning"]
    result = invoke("predict", str(tmp_path / "mnist-form.png"), "--raw", "-c", str(sample_model), "--no-show")
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_an_eps_file_named_png_is_refused_without_decoding_it(sample_model, tmp_path) -> None:
    (tmp_path / "digit.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    result = invoke("predict", str(tmp_path / "digit.png"), "-c", str(sample_model))
    assert result.exit_code == 1 and "not an image mlpcli reads" in result.stderr
    assert "Traceback" not in result.output


# ---- files --------------------------------------------------------------------------------------


def test_kaggle_csvs_saved_from_excel_train_and_predict(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = load_dataset("mnist-sample")
    for name, x, y in (("train.csv", data.train_x[:600], data.train_y[:600]), ("test.csv", data.test_x[:50], None)):
        text = write_csv(tmp_path / name, x, y).read_text()
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())  # BOM + CRLF
    trained = invoke("train", *QUICK, "--set", "data.dataset=train.csv", "--set", "data.validation=100", "--json")
    assert trained.exit_code == 0, trained.output
    run = json.loads(trained.stdout)["run_dir"]
    result = invoke("predict", "test.csv", "-c", run, "--submission", "sub.csv")
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "sub.csv").read_text().splitlines()) == 51


def test_idx_files_are_judged_by_their_bytes_not_their_names(tmp_path, monkeypatch) -> None:
    """A browser decompressed them but kept the .gz names: --data-dir reads them, as data import does."""
    folder = tmp_path / "browser"
    folder.mkdir()
    for path in TINY.glob("*.gz"):
        (folder / path.name).write_bytes(gzip.decompress(path.read_bytes()))
    monkeypatch.chdir(tmp_path)
    result = invoke("train", *QUICK, "--set", f"data.dataset={folder}", "--set", "data.validation=0", "--json")
    assert result.exit_code == 0, result.output


# ---- mirrors ------------------------------------------------------------------------------------


def test_a_mirror_sending_gz_files_as_content_encoding_gzip_is_verified_and_used(serve, monkeypatch) -> None:
    server = serve()
    server.behaviours["apache"] = "gzip-encoding"
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("apache"))
    paths = download.fetch(TINY_SPEC)
    assert all(s.state == "verified" for s in download.status(TINY_SPEC)) and len(paths) == 4


def test_endless_data_from_a_mirror_stops_at_the_cap(serve, monkeypatch) -> None:
    server = serve()
    server.behaviours["zeros"] = "zeros"
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("zeros"))
    monkeypatch.setattr(download, "MAX_DOWNLOAD", 4 * 1024**2)
    with pytest.raises(DataError, match="sent more than 4,194,304 bytes"):
        download.fetch(TINY_SPEC)
    assert not list(dataset_dir(TINY_SPEC).glob("*.part"))


def test_a_trickling_mirror_meets_the_overall_deadline(serve, monkeypatch) -> None:
    server = serve()
    server.behaviours["trickle"] = "trickle"
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("trickle"))
    monkeypatch.setenv("MLPCLI_TIMEOUT", "0.5")  # no single gap is that long; the whole file is too slow
    with pytest.raises(DataError, match="too slow: not done after 5 s"):
        download.fetch(TINY_SPEC)


def test_a_partial_download_is_shown_and_a_corrupt_file_named_offline(isolated_env) -> None:
    folder = dataset_dir(TINY_SPEC)
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz.x1y2.part").write_bytes(b"\x1f\x8bpartial")
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bdamaged")
    rows = download.status(TINY_SPEC)
    assert {r.state for r in rows} >= {"corrupt"}
    from mlpcli.data.cache import partials

    assert [p.name for p in partials(TINY_SPEC)] == ["train-images-idx3-ubyte.gz.x1y2.part"]
    with pytest.raises(DataError, match="does not match its pinned checksum"):
        download.fetch_file(TINY_SPEC, TINY_SPEC.files[1], offline=True)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc", "1e400"])
def test_bad_timeouts_are_one_line(monkeypatch, value) -> None:
    monkeypatch.setenv("MLPCLI_TIMEOUT", value)
    with pytest.raises(DataError, match="MLPCLI_TIMEOUT must be a number of seconds above 0"):
        download.timeouts()


# ---- bounded reads of things that are not files -------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this system")
@pytest.mark.parametrize("where", ["config", "data.test", "data.dataset"])
def test_devices_are_refused_where_a_file_is_expected(tmp_path, monkeypatch, where) -> None:
    monkeypatch.chdir(tmp_path)
    with address_space_limit(3 * 1024**3):  # a runaway read fails here, not the machine
        if where == "config":
            result = invoke("train", "-c", "/dev/zero")
        else:
            result = invoke("train", *QUICK, "--set", f"{where}=/dev/zero")
    why = "not a folder" if where == "data.dataset" else "not a regular file"  # a dataset is a name, folder or CSV
    assert result.exit_code == 1 and "/dev/zero" in result.stderr and why in result.stderr


def test_a_csv_without_line_ends_is_refused_at_the_first_long_line(tmp_path) -> None:
    from mlpcli.data.csvfile import MAX_LINE, read_csv_digits

    path = tmp_path / "one-line.csv"
    path.write_text("label," + ",".join(["0"] * (MAX_LINE // 2)))
    with pytest.raises(DataError, match="line 1 is longer than"):
        read_csv_digits(path)


@pytest.mark.parametrize("command", ["plot", "compare", "inspect"])
def test_pictures_into_a_missing_or_unwritable_folder_are_one_line(tmp_path, monkeypatch, command) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert invoke("train", *QUICK, "--out", "a").exit_code == 0
    assert invoke("train", *QUICK, "--out", "b").exit_code == 0
    target = str(tmp_path / "missing" / "x.png")
    args = {
        "plot": ["plot", "a", "--out", target],
        "compare": ["compare", "a", "b", "--png", target],
        "inspect": ["inspect", "a/checkpoint.npz", "--weights", "--png", target],
    }[command]
    result = invoke(*args)
    assert result.exit_code == 1 and "missing" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


# ---- data that deserves a warning ---------------------------------------------------------------


def test_a_class_missing_from_the_training_split_is_said_before_training(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = load_dataset("mnist-sample")
    keep = data.train_y[:800] != 7
    write_csv(tmp_path / "no7.csv", data.train_x[:800][keep], data.train_y[:800][keep])
    result = invoke("train", *QUICK, "--set", "data.dataset=no7.csv", "--set", "data.validation=0")
    assert result.exit_code == 0 and "class 7" in result.stderr and "no training examples" in result.stderr


def test_a_run_that_ends_at_chance_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--set", "optimizer.lr=3", "--set", "schedule.name=constant", "--set", "model.hidden=[64]"]
    result = invoke("train", "-c", str(CONFIGS / "quickstart.yaml"), *args, "--epochs", "3", "--out", "r")
    assert result.exit_code == 0 and "ended at chance" in result.stderr
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert status["at_chance"] is True and np.isfinite(status["test_loss"]) and status["test_accuracy"] < 0.2
    doc = json.loads(invoke("train", "-c", str(CONFIGS / "quickstart.yaml"), *args, "--epochs", "3", "--json").stdout)
    assert doc["at_chance"] is True


def test_a_tab_separated_csv_says_so(tmp_path) -> None:
    from mlpcli.data.csvfile import read_csv_digits

    path = tmp_path / "tabs.csv"
    path.write_text("label\t" + "\t".join(f"pixel{i}" for i in range(784)) + "\n")
    with pytest.raises(DataError, match="separated by tabs or semicolons"):
        read_csv_digits(path)
