"""serve's throughput and peak memory under load, on 127.0.0.1.

    python scripts/bench_serve.py [CHECKPOINT] [--uploads 400] [--threads 8]

Starts `mlpcli serve --port 0` (a subprocess, ended by its process id), sends --uploads drawn
digits from --threads threads and reports uploads per second, then 16 uploads at once of a
7070x7070 RGBA PNG (the issue's memory case) and reports the server's peak resident memory
and what it holds afterwards. Run it on a quiet machine; without CHECKPOINT it trains the
quickstart config into a temporary folder first.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _post(url: str, name: str, data: bytes) -> int:
    boundary = "benchboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    try:
        with urllib.request.urlopen(request, timeout=300) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _memory(pid: int, key: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+) kB", text).group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", type=Path)
    parser.add_argument("--uploads", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    from PIL import Image

    from mlpcli.data.load import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint
        if ckpt is None:
            run = Path(tmp) / "run"
            cmd = [
                sys.executable,
                "-m",
                "mlpcli",
                "train",
                "-c",
                str(REPO / "configs/quickstart.yaml"),
                "--out",
                str(run),
            ]
            subprocess.run([*cmd, "-q"], check=True, stdout=subprocess.DEVNULL)
            ckpt = run / "checkpoint.npz"
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpcli", "serve", str(ckpt), "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        try:
            port = int(re.search(r"127\.0\.0\.1:(\d+)/", proc.stdout.readline()).group(1))
            url = f"http://127.0.0.1:{port}/api/predict"
            digits = load_dataset("mnist-sample").test_x[:50].reshape(-1, 28, 28)
            pngs = []
            for d in digits:
                buf = io.BytesIO()
                Image.fromarray(255 - d).resize((280, 280)).save(buf, format="PNG")
                pngs.append(buf.getvalue())
            statuses: list[int] = []
            per_thread = args.uploads // args.threads

            def worker(offset: int) -> None:
                for i in range(per_thread):
                    statuses.append(_post(url, "d.png", pngs[(offset + i) % len(pngs)]))

            start = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(t,)) for t in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - start
            idle = _memory(proc.pid, "VmRSS")
            buf = io.BytesIO()
            Image.new("RGBA", (7070, 7070), (255, 255, 255, 255)).save(buf, format="PNG")
            huge = buf.getvalue()
            big: list[int] = []
            threads = [threading.Thread(target=lambda: big.append(_post(url, "huge.png", huge))) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            report = {
                "uploads": len(statuses),
                "ok": statuses.count(200),
                "uploads_per_s": len(statuses) / seconds,
                "huge_png_bytes": len(huge),
                "huge_statuses": sorted(set(big)),
                "rss_before_huge_mib": idle,
                "peak_rss_mib": _memory(proc.pid, "VmHWM"),
                "rss_after_mib": _memory(proc.pid, "VmRSS"),
            }
            print(json.dumps(report, indent=2))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()


if __name__ == "__main__":
    main()
