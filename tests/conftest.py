"""Shared fixtures: an isolated cache, a real HTTP server on 127.0.0.1, the tiny MNIST fixture."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpcli.data.sources import DIGITS, FILE_NAMES, DataFile, DatasetSpec

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "mnist-tiny"
# sha256 of the gz file and of its decompressed content, pinned like the real datasets'.
TINY_HASHES = {
    "train_images": (
        "a05dd3c632c46602eaaf040f98a6d2d549962dc71ade9c0c38050e4e5eca5e7e",
        "f04278f7eeed20dddd03166a02df7b54f590a2edd1fce84ec19546d736971d2c",
    ),
    "train_labels": (
        "51e8d28d590074141a513cd203103a66c1ffd7e3b6434a2f0fdef222ce5abea2",
        "e3a52ff91522f3a4f74e3a413a2dda110cc30f335950da02f1ef99b23e3cf0e6",
    ),
    "test_images": (
        "fe99ef8f16a3db1ef113fa96f787c9c944891b4da54770029b508596d006217f",
        "806da1c8626ed91a2ec572ed80666121226e1de20cec504c2787812cac71d159",
    ),
    "test_labels": (
        "68eb6712915588b9084d9ccfe10daae43e6d934011bd18dc4a18e3482897c417",
        "1a053e1de7d8946ac62b3ae5a196d52d2e96bc66fd695815a7e29f0310f9c031",
    ),
}
TINY_SPEC = DatasetSpec(
    name="tiny",
    files=tuple(DataFile(role, FILE_NAMES[role], *TINY_HASHES[role]) for role in FILE_NAMES),
    mirrors=(),
    classes=DIGITS,
)
FULL_MNIST = os.environ.get("MLPCLI_TEST_MNIST_DIR")
needs_full_mnist = pytest.mark.skipif(
    not FULL_MNIST, reason="set MLPCLI_TEST_MNIST_DIR to the folder of the four MNIST files (.ci/run does)"
)


@pytest.fixture(scope="session")
def sample_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one trained checkpoint tests share: configs/quickstart.yaml (784-128-10, the shipped sample), 10 epochs."""
    from mlpcli.config import load_config
    from mlpcli.training import service as training

    run = tmp_path_factory.mktemp("sample-run")
    configs = Path(__file__).parent.parent / "configs"
    cfg = load_config(configs / "quickstart.yaml", ["data.validation=0", "train.epochs=10"])
    return training.run(training.prepare(cfg), run).checkpoint


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache and no mirror/offline settings from the outside."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLPCLI_DATA_DIR", str(cache))
    for var in ("MLPCLI_MIRROR", "MLPCLI_OFFLINE", "MLPCLI_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "160")
    return cache


class Server:
    """A real HTTP server on 127.0.0.1; behaviours maps a URL prefix to how it answers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.behaviours: dict[str, str] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(self.path)
                prefix, _, name = self.path.strip("/").rpartition("/")
                mode = server.behaviours.get(prefix, "ok")
                path = server.root / name
                if mode in ("404", "500"):
                    self.send_error(int(mode))
                    return
                if mode == "html":
                    body = b"<!DOCTYPE html><html><body>Access denied</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if mode == "html-as-gz":  # an error page sent with a binary content type
                    body = b"<html><body>Not Found</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if mode == "hang":
                    time.sleep(5)
                    return
                if mode == "zeros":  # gzip's magic, then zeros without end (bounded here: 64 MiB)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(b"\x1f\x8b" + bytes(1 << 16))
                    for _ in range(1024):
                        try:
                            self.wfile.write(bytes(1 << 16))
                        except OSError:
                            return
                    return
                if mode == "trickle":  # a byte every 0.2 s, for at most 30 s
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    for _ in range(150):
                        try:
                            self.wfile.write(b"\x1f")
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(0.2)
                    return
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                if mode == "corrupt":
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                if mode == "gzip-encoding":  # Apache's AddEncoding x-gzip .gz: the .gz file marked as encoded
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                if mode == "truncate":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if mode == "slow":
                    for i in range(0, len(data), 4096):
                        self.wfile.write(data[i : i + 4096])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, prefix: str) -> str:
        """Base URL of a mirror; its behaviour is set through behaviours[prefix]."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}/"

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[callable]:
    """serve(folder) -> a running Server for that folder; all are stopped after the test."""
    servers: list[Server] = []

    def start(root: Path = TINY) -> Server:
        server = Server(root)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers a test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
