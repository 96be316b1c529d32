"""serve under load and attack, on 127.0.0.1: bounded memory, bodies, connections; refused hosts and origins;
every error in the API's shape; clean stops. Each server is a subprocess ended by its own process id."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install '.[serve]'")


class Running:
    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc, self.port = proc, port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def peak_rss_mib(self) -> float:
        """The server process's peak resident memory so far (VmHWM), MiB."""
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024

    def rss_mib(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


def _start(ckpt: Path, *args: str) -> Running:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpcli", "serve", str(ckpt), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    match = re.search(r"127\.0\.0\.1:(\d+)/", line)
    assert match, line + proc.stderr.read()
    return Running(proc, int(match.group(1)))


@pytest.fixture
def server(sample_model) -> Iterator[Running]:
    running = _start(sample_model)
    yield running
    running.proc.send_signal(signal.SIGTERM)
    running.proc.wait()


def _post(url: str, files: dict[str, tuple[str, bytes]], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    boundary = "mlpclitestboundary"
    body = b""
    for field, (name, data) in files.items():
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_port_it_got_is_printed_and_sigterm_stops_it_cleanly(sample_model) -> None:
    running = _start(sample_model)
    with urllib.request.urlopen(running.url("/favicon.ico")) as resp:
        assert resp.status == 200
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait() == 0


def test_a_port_in_use_is_one_line_and_exit_1(sample_model) -> None:
    running = _start(sample_model)
    try:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
        again = subprocess.run(
            [sys.executable, "-m", "mlpcli", "serve", str(sample_model), "--port", str(running.port)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert again.returncode == 1 and "in use" in again.stderr and len(again.stderr.strip().splitlines()) == 1
        assert "serving" not in again.stdout
    finally:
        running.proc.send_signal(signal.SIGTERM)
        running.proc.wait()


def test_other_hosts_and_origins_are_refused_unless_allowed(server, sample_model) -> None:
    request = urllib.request.Request(server.url("/api/model"), headers={"Host": "rebind.example:8000"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 421 and "error" in json.loads(info.value.read())
    status, doc = _post(server.url("/api/predict"), {"image": ("x.png", b"x")}, {"Origin": "http://evil.example"})
    assert status == 403 and "--allow-origin" in doc["error"]
    status, doc = _post(server.url("/api/predict"), {"image": ("x.png", b"x")}, {"Origin": server.url("")})
    assert status == 422  # its own page: answered (the bytes are no picture)
    allowed = _start(sample_model, "--allow-origin", "http://my.lan:8000")
    try:
        status, _ = _post(allowed.url("/api/predict"), {"image": ("x.png", b"x")}, {"Origin": "http://my.lan:8000"})
        assert status == 422
    finally:
        allowed.proc.send_signal(signal.SIGTERM)
        allowed.proc.wait()


def test_every_error_has_the_api_shape(server) -> None:
    status, doc = _post(server.url("/api/predict"), {"text": ("t", b"hello")})
    assert status == 422 and set(doc) == {"error"}
    status, doc = _post(server.url("/api/predict"), {"image": ("n" * 10_000 + ".png", b"x")})
    assert 400 <= status < 500 and set(doc) == {"error"}
    many = {f"f{i}": (f"{i}.txt", b"x") for i in range(1200)}
    status, doc = _post(server.url("/api/predict"), many)
    assert 400 <= status < 500 and set(doc) == {"error"}
    request = urllib.request.Request(server.url("/api/predict"), method="PUT")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 405 and set(json.loads(info.value.read())) == {"error"}


def test_a_chunked_body_is_stopped_at_the_cap_as_it_arrives(server) -> None:
    """Without Content-Length: the server answers 413 long before 300 MB are sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
        start = b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
        sock.sendall(b"%x\r\n%s\r\n" % (len(start), start))  # a valid form whose file never ends
        chunk = b"%x\r\n%s\r\n" % (1 << 16, b"\0" * (1 << 16))
        try:
            while sent < 300 * 2**20:
                sock.sendall(chunk)
                sent += 1 << 16
        except OSError:  # the server closed the connection after answering
            pass
        answer = sock.recv(4096)
    assert b" 413 " in answer.split(b"\r\n")[0] and sent < 64 * 2**20


def test_half_sent_requests_time_out_and_normal_ones_are_answered(server) -> None:
    held = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
        held.append(s)
    try:
        for s in held:  # the server closes each of them (no time limit here: it is the server's)
            s.settimeout(60)
            assert s.recv(1) == b""
        with urllib.request.urlopen(server.url("/api/model"), timeout=30) as resp:
            assert resp.status == 200
    finally:
        for s in held:
            s.close()


def test_sixteen_huge_uploads_at_once_stay_bounded_and_are_answered(server, tmp_path) -> None:
    from helpers import address_space_limit
    from PIL import Image

    with address_space_limit(1024**3):  # this test's own process, not the server's
        img = Image.new("RGBA", (7070, 7070), (255, 255, 255, 255))
        path = tmp_path / "huge.png"
        img.save(path, optimize=False)
        del img
    data = path.read_bytes()
    idle = server.rss_mib()
    statuses: list[int] = []

    def upload() -> None:
        statuses.append(_post(server.url("/api/predict"), {"image": ("huge.png", data)})[0])

    threads = [threading.Thread(target=upload) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 16 and all(s == 200 or 400 <= s < 500 for s in statuses), statuses
    assert server.peak_rss_mib() < 1024
    time.sleep(0.5)
    assert server.rss_mib() < idle + 256


def test_an_upload_over_the_cap_gets_its_json_answer(server) -> None:
    status, doc = _post(server.url("/api/predict"), {"image": ("big.png", b"\0" * (11 * 2**20))})
    assert status == 413 and "larger than 8 MiB" in doc["error"]


def test_one_picture_per_request_and_only_its_own_port(server) -> None:
    status, doc = _post(server.url("/api/predict"), {"image": ("a.png", b"x"), "image ": ("b.png", b"x")})
    assert status in (422, 400)
    boundary = "b"
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{n}"\r\n\r\nx\r\n'.encode()
            for n in ("a.png", "b.png")
        )
        + f"--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(server.url("/api/predict"), data=body, method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 422 and "one picture per request" in json.loads(info.value.read())["error"]
    other_port = f"http://localhost:{server.port + 1}"
    status, doc = _post(server.url("/api/predict"), {"image": ("x.png", b"x")}, {"Origin": other_port})
    assert status == 403
