"""Downloads against a real HTTP server on 127.0.0.1: mirrors, failures, cache, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FULL_MNIST, TINY, TINY_SPEC, needs_full_mnist

from mlpcli.data import download
from mlpcli.data.cache import dataset_dir, matches
from mlpcli.data.idx import read_split
from mlpcli.data.sources import DATASETS
from mlpcli.errors import DataError
from mlpcli.events import DownloadEnd, DownloadProgress, DownloadStart


def _cache_files(cache: Path) -> list[str]:
    folder = cache / TINY_SPEC.name
    return (
        sorted(p.name for p in folder.iterdir() if p.name != ".lock") if folder.exists() else []
    )  # the cache lock stays


def test_fetch_success_verifies_and_reports_progress(serve, monkeypatch, isolated_env) -> None:
    server = serve()
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("good"))
    events: list[object] = []
    paths = download.fetch(TINY_SPEC, callbacks=[events.append])
    assert sorted(p.name for p in paths.values()) == sorted(f.name for f in TINY_SPEC.files)
    assert all(matches(paths[f.role], f) for f in TINY_SPEC.files)
    assert _cache_files(isolated_env) == sorted(f.name for f in TINY_SPEC.files)  # no .part left
    assert any(isinstance(e, DownloadStart) and e.total for e in events)
    assert any(isinstance(e, DownloadProgress) for e in events)
    x, y = read_split(paths["train_images"], paths["train_labels"])
    assert x.shape == (300, 784) and y.shape == (300,)


def test_a_second_fetch_uses_the_cache(serve, monkeypatch) -> None:
    server = serve()
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("good"))
    download.fetch(TINY_SPEC)
    server.requests.clear()
    download.fetch(TINY_SPEC)
    assert server.requests == []


@pytest.mark.parametrize("failure", ["404", "500", "html", "html-as-gz", "truncate", "corrupt"])
def test_a_failing_first_mirror_falls_through_to_the_second(serve, monkeypatch, isolated_env, failure) -> None:
    server = serve()
    server.behaviours["bad"] = failure
    monkeypatch.setenv("MLPCLI_MIRROR", f"{server.url('bad')},{server.url('good')}")
    events: list[object] = []
    paths = download.fetch(TINY_SPEC, callbacks=[events.append])
    assert all(matches(paths[f.role], f) for f in TINY_SPEC.files)
    failures = [e for e in events if isinstance(e, DownloadEnd) and not e.ok]
    assert len(failures) == 4 and all("/bad/" in e.url for e in failures)
    assert _cache_files(isolated_env) == sorted(f.name for f in TINY_SPEC.files)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("404", "HTTP 404"),
        ("500", "HTTP 500"),
        ("html", "HTML page"),
        ("html-as-gz", "HTML page"),
        ("truncate", "truncated"),
        ("corrupt", "checksum mismatch"),
    ],
)
def test_each_failure_is_named(serve, monkeypatch, failure, reason) -> None:
    server = serve()
    server.behaviours["bad"] = failure
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("bad"))
    with pytest.raises(DataError, match=reason):
        download.fetch(TINY_SPEC)


def test_a_hanging_server_times_out_and_the_next_mirror_is_used(serve, monkeypatch) -> None:
    server = serve()
    server.behaviours["hang"] = "hang"
    monkeypatch.setenv("MLPCLI_TIMEOUT", "0.5")
    monkeypatch.setenv("MLPCLI_MIRROR", f"{server.url('hang')},{server.url('good')}")
    events: list[object] = []
    download.fetch(TINY_SPEC, callbacks=[events.append])
    reasons = [e.reason for e in events if isinstance(e, DownloadEnd) and not e.ok]
    assert reasons and all("timed out" in r for r in reasons)


def test_all_mirrors_failing_gives_one_error_naming_each(serve, monkeypatch, isolated_env) -> None:
    server = serve()
    server.behaviours.update({"a": "404", "b": "html", "c": "corrupt"})
    monkeypatch.setenv("MLPCLI_MIRROR", ",".join(server.url(m) for m in "abc"))
    with pytest.raises(DataError) as info:
        download.fetch(TINY_SPEC)
    message = str(info.value)
    assert "\n" not in message
    for m, why in (("a", "HTTP 404"), ("b", "HTML"), ("c", "checksum mismatch")):
        assert f"{server.url(m)}: " in message and why in message
    assert "mlpcli data import" in message
    assert _cache_files(isolated_env) == []  # nothing unverified left behind


def test_a_refused_connection_is_reported(monkeypatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MLPCLI_MIRROR", f"http://127.0.0.1:{port}/")
    with pytest.raises(DataError, match="could not connect"):
        download.fetch(TINY_SPEC)


def test_offline_mode_never_touches_the_network(serve, monkeypatch) -> None:
    server = serve()
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("good"))
    monkeypatch.setenv("MLPCLI_OFFLINE", "1")
    with pytest.raises(DataError, match="offline"):
        download.fetch(TINY_SPEC)
    assert server.requests == []
    monkeypatch.delenv("MLPCLI_OFFLINE")
    with pytest.raises(DataError, match="offline"):
        download.fetch(TINY_SPEC, offline=True)
    assert server.requests == []


def test_a_failure_midway_leaves_nothing_trusted_and_the_next_fetch_succeeds(serve, monkeypatch, isolated_env) -> None:
    server = serve()
    server.behaviours["flaky"] = "truncate"
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("flaky"))
    with pytest.raises(DataError):
        download.fetch(TINY_SPEC)
    # a leftover partial file from a killed process, and a corrupt file in the final place
    folder = dataset_dir(TINY_SPEC)
    (folder / "t10k-labels-idx1-ubyte.gz.part").write_bytes(b"partial")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    assert all(s.state != "verified" for s in download.status(TINY_SPEC))
    server.behaviours["flaky"] = "ok"
    paths = download.fetch(TINY_SPEC)
    assert all(matches(paths[f.role], f) for f in TINY_SPEC.files)
    assert _cache_files(isolated_env) == sorted(f.name for f in TINY_SPEC.files)


def test_cache_root_defaults_to_xdg(monkeypatch, tmp_path) -> None:
    from mlpcli.data.cache import cache_root

    monkeypatch.delenv("MLPCLI_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "mlpcli"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "mlpcli"


def test_mirror_order_puts_the_environment_first(monkeypatch) -> None:
    monkeypatch.setenv("MLPCLI_MIRROR", "http://a.example/x, http://b.example/y/")
    mirrors = download.mirrors_for(DATASETS["mnist"])
    assert mirrors[:2] == ["http://a.example/x/", "http://b.example/y/"]
    assert mirrors[2:] == list(DATASETS["mnist"].mirrors)


def test_debian_recompressed_files_verify_by_content(tmp_path) -> None:
    import gzip

    dfile = TINY_SPEC.file("test_labels")
    raw = gzip.decompress((TINY / dfile.name).read_bytes())
    recompressed = tmp_path / dfile.name
    recompressed.write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
    assert recompressed.read_bytes() != (TINY / dfile.name).read_bytes()
    assert matches(recompressed, dfile)
    uncompressed = tmp_path / "t10k-labels-idx1-ubyte"
    uncompressed.write_bytes(raw)
    assert matches(uncompressed, dfile)
    uncompressed.write_bytes(raw[:-1] + bytes([(raw[-1] + 1) % 10]))
    assert not matches(uncompressed, dfile)


@needs_full_mnist
def test_full_mnist_through_a_local_mirror(serve, monkeypatch) -> None:
    server = serve(Path(FULL_MNIST))
    monkeypatch.setenv("MLPCLI_MIRROR", server.url("mnist"))
    from mlpcli.data.load import load_dataset

    data = load_dataset("mnist")
    assert data.train_x.shape == (60000, 784) and data.test_x.shape == (10000, 784)
    assert np.bincount(data.train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(data.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
